/**
 * Application templates (sql/functions/041_application_templates.sql): an
 * application declaring variables, applied with values (or its defaults),
 * twice into one database under other names and tables; values given as text
 * read as their type; every refusal names the application and the variable,
 * and applies nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { application, type TemplateVariable } from '../../src/components/application.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

const measure = functionModel({ name: 'measure', output: { type: 'vector', dim: 2 }, predict: (ins: string[]) => ins.map((t) => [t.length, 1]) });

/** Semantic search over one text column, as a package would ship it. */
const template = {
  type: 'application',
  name: '{{name}}',
  description: 'search over {{table}}.{{column}}',
  variables: {
    name: { type: 'text', description: 'the application' },
    table: { type: 'table', description: 'the table to search' },
    column: { type: 'column', default: 'body', description: 'its text column' },
    batch: { type: 'integer', default: 16, description: 'rows per model call' },
  },
  components: [
    { type: 'listener', name: '{{name}}_embedding', model: 'measure', table: '{{table}}', keys: ['{{column}}'], settings: { batch_size: '{{batch}}' } },
    { type: 'vector_index', name: '{{name}}_index', listener: '{{name}}_embedding' },
  ],
};

const registry = async () => ({
  listeners: (await q(`SELECT DISTINCT name FROM superduper._listeners ORDER BY name`)).map((r) => r.name),
  applications: (await q(`SELECT name FROM superduper._applications ORDER BY name`)).map((r) => r.name),
});

beforeEach(async () => {
  database = await createTestDatabase('app_templates');
  db = await connectTest(database);
  await q(`CREATE TABLE "My ""Docs""; x" (id int PRIMARY KEY, body text, title text)`);
  await q(`INSERT INTO "My ""Docs""; x" VALUES (1, 'hello', 'greeting'), (2, 'moon', 'sky')`);
  await q(`CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'a note')`);
  await db.apply(measure);
  await db.start({ reconcileMs: 100 });
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

describe('application templates', () => {
  it('applies one template twice, under other names and tables, each with its values', async () => {
    const [first] = await db.apply(
      application({
        name: template.name,
        description: template.description,
        variables: template.variables as Record<string, TemplateVariable>,
        values: { name: 'docs', table: 'My "Docs"; x', column: 'title' },
        components: template.components,
      }),
    );
    expect(first).toMatchObject({ type: 'application', name: 'docs', action: 'created' });
    const [{ r: second }] = await q(`SELECT superduper.apply_template($1::jsonb, '{"name": "notes", "table": "notes", "batch": "32"}') AS r`, [JSON.stringify(template)]);
    expect(second).toMatchObject({ type: 'application', name: 'notes', action: 'created' });

    expect(await q(`SELECT name, description, variables FROM superduper.applications ORDER BY name`)).toEqual([
      { name: 'docs', description: 'search over My "Docs"; x.title', variables: { name: 'docs', table: 'My "Docs"; x', column: 'title', batch: 16 } },
      { name: 'notes', description: 'search over notes.body', variables: { name: 'notes', table: 'notes', column: 'body', batch: 32 } },
    ]);
    // A placeholder alone takes the value with its type: batch_size is a number.
    expect(await q(`SELECT name, source, keys, settings ->> 'batch_size' AS batch, jsonb_typeof(settings -> 'batch_size') AS t FROM superduper.listeners ORDER BY name`)).toEqual([
      { name: 'docs_embedding', source: 'public."My ""Docs""; x"', keys: ['title'], batch: '16', t: 'number' },
      { name: 'notes_embedding', source: 'public.notes', keys: ['body'], batch: '32', t: 'number' },
    ]);
    await db.waitFor(undefined, { timeoutMs: 10_000 });
    expect(await q(`SELECT id, output::text FROM superduper.out_docs_embedding ORDER BY id`)).toEqual([
      { id: 1, output: '[8,1]' },
      { id: 2, output: '[3,1]' },
    ]);
    expect(await q(`SELECT id, output::text FROM superduper.out_notes_embedding`)).toEqual([{ id: 1, output: '[6,1]' }]);

    // The same template and values again: nothing to do.
    const [again] = await db.apply({ ...template, values: { name: 'docs', table: 'My "Docs"; x', column: 'title' } });
    expect(again).toMatchObject({ action: 'unchanged' });
  });

  it('refuses a missing, unknown, undeclared or mistyped variable, applying nothing', async () => {
    const apply = (values: Record<string, unknown>, changes: Record<string, unknown> = {}) => db.apply({ ...template, ...changes, values });
    await expect(apply({ name: 'a' })).rejects.toThrow(/application "\{\{name\}\}": variable "table" has no value and no default/);
    await expect(apply({ name: 'a' })).rejects.toMatchObject({ hint: expect.stringContaining('--var table=...') });
    await expect(apply({ name: 'a', table: 'notes', tabel: 'x' })).rejects.toThrow(/no variable named 'tabel'/);
    await expect(apply({ name: 'a', table: 'notes', batch: 'many' })).rejects.toThrow(/variable "batch" must be an integer, not "many"/);
    await expect(apply({ name: 'a', table: '' })).rejects.toThrow(/variable "table" must be a table name, not ""/);
    await expect(apply({ name: 'a', table: 'notes' }, { description: 'about {{topic}}' })).rejects.toThrow(/\{\{topic\}\} names no declared variable/);
    await expect(apply({ name: 'a', table: 'notes' }, { variables: { ...template.variables, extra: { type: 'colour' } } })).rejects.toThrow(
      /variable "extra": unknown type "colour"/,
    );
    await expect(apply({ name: 'a', table: 'notes' }, { variables: { ...template.variables, 'bad name': {} } })).rejects.toThrow(
      /variable name 'bad name' must be letters, digits and underscores/,
    );
    await expect(db.apply({ type: 'application', name: 'plain', values: { x: 1 }, components: [] })).rejects.toThrow(/"values" given, but no "variables" declared/);
    // A table the values name that is not there: the listener's own refusal.
    await expect(apply({ name: 'a', table: 'no_such_table' })).rejects.toThrow(/no_such_table/);
    expect(await registry()).toEqual({ listeners: [], applications: [] });
  });
});
