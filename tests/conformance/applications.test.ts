/**
 * Applications (sql/functions/042_applications.sql): a named group of
 * components applied, versioned and removed as one, from TypeScript and from
 * SQL; what it no longer lists is removed; a component two applications hold
 * stays until both are gone; refusals leave nothing half-applied.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { application } from '../../src/components/application.js';
import { listener } from '../../src/components/listener.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

const measure = functionModel({ name: 'measure', output: { type: 'vector', dim: 2 }, predict: (ins: string[]) => ins.map((t) => [t.length, 1]) });
const shout = functionModel({ name: 'shout', output: { type: 'text' }, predict: (ins: string[]) => ins.map((t) => t.toUpperCase()) });

// A hostile application name: quotes, a space, upper case, a semicolon.
const APP = `Docs "search"; app`;
const searchApp = (settings: Record<string, number> = {}, withIndex = true) =>
  application({
    name: APP,
    description: 'search over the docs',
    components: [
      listener({ name: 'doc_measure', model: measure, table: 'Docs', keys: ['body'], settings }),
      ...(withIndex ? [vectorIndex({ name: 'doc_index', listener: 'doc_measure' })] : []),
    ],
  });

const applications = () => q(`SELECT name, version, description, components FROM superduper.applications ORDER BY name`);
const registry = async () => ({
  models: (await q(`SELECT name FROM superduper._models WHERE name <> 'default-embedder' ORDER BY name`)).map((r) => r.name),
  listeners: (await q(`SELECT DISTINCT name FROM superduper._listeners ORDER BY name`)).map((r) => r.name),
  indexes: (await q(`SELECT name FROM superduper._vector_indexes ORDER BY name`)).map((r) => r.name),
});

beforeEach(async () => {
  database = await createTestDatabase('applications');
  db = await connectTest(database);
  await q(`CREATE TABLE "Docs" (id int PRIMARY KEY, body text); INSERT INTO "Docs" VALUES (1, 'hello'), (2, 'moon')`);
  await db.start({ reconcileMs: 100 });
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

describe('applications', () => {
  it('applies its components as one, in order, and lists them', async () => {
    const [result] = await db.apply(searchApp());
    expect(result).toMatchObject({ type: 'application', name: APP, action: 'created' });
    expect(result!.components!.map((c) => [c.type, c.name, c.action])).toEqual([
      ['model', 'measure', 'created'],
      ['listener', 'doc_measure', 'created'],
      ['vector_index', 'doc_index', 'created'],
    ]);
    expect(await applications()).toEqual([
      {
        name: APP,
        version: 1,
        description: 'search over the docs',
        components: [
          { type: 'model', name: 'measure', present: true },
          { type: 'listener', name: 'doc_measure', present: true },
          { type: 'vector_index', name: 'doc_index', present: true },
        ],
      },
    ]);
    await db.waitFor('doc_measure', { timeoutMs: 10_000 });
    expect(await q(`SELECT id, output::text FROM superduper.out_doc_measure ORDER BY id`)).toEqual([
      { id: 1, output: '[5,1]' },
      { id: 2, output: '[4,1]' },
    ]);
  });

  it('is a no-op applied the same again, and updated in place (the same version) when a component changes in place', async () => {
    await db.apply(searchApp());
    const [same] = await db.apply(searchApp());
    expect(same).toMatchObject({ action: 'unchanged' });
    expect(same!.components!.every((c) => c.action === 'unchanged')).toBe(true);
    expect((await applications())[0]).toMatchObject({ version: 1 });

    const [changed] = await db.apply(searchApp({ batch_size: 7 }));
    expect(changed).toMatchObject({ action: 'updated' });
    expect(changed!.components!.find((c) => c.name === 'doc_measure')).toMatchObject({
      action: 'updated',
    });
    // Settings are not breaking: the application keeps its identity and version
    // (component-identity.test.ts has the breaking changes).
    expect((await applications())[0]).toMatchObject({ version: 1 });
  });

  it('rebuilds a component beside the current one on a breaking change', async () => {
    await db.apply(searchApp());
    await db.waitFor('doc_measure', { timeoutMs: 10_000 });
    // measure stays listed: the current version keeps computing with it until the new one is complete.
    const rebuilt = application({
      name: APP,
      components: [measure, listener({ name: 'doc_measure', model: shout, table: 'Docs', keys: ['body'] })],
    });
    const [result] = await db.apply(rebuilt);
    const actions = Object.fromEntries(result!.components!.map((c) => [c.name, c.action]));
    expect(actions).toMatchObject({ shout: 'created', doc_measure: 'rebuilding', doc_index: 'removed' });
    // The current version serves until the new one is complete, then the new one is swapped in.
    const outputs = () => q(`SELECT id, output::text FROM superduper.out_doc_measure ORDER BY id`);
    await eventually(async () => (await outputs())[0]?.output === 'HELLO', 10_000, 'the new version to be swapped in');
    expect(await outputs()).toEqual([
      { id: 1, output: 'HELLO' },
      { id: 2, output: 'MOON' },
    ]);
  });

  it('lets go of a model its listener still computes with while rebuilt with another, keeping it registered', async () => {
    await db.apply(searchApp());
    await db.waitFor('doc_measure', { timeoutMs: 10_000 });
    const [result] = await db.apply(application({ name: APP, components: [listener({ name: 'doc_measure', model: shout, table: 'Docs', keys: ['body'] })] }));
    expect(result!.components!.map((c) => [c.name, c.action])).toEqual([
      ['doc_index', 'removed'],
      ['measure', 'kept'],
      ['shout', 'created'],
      ['doc_measure', 'rebuilding'],
    ]);
    expect(result!.components![1]).toMatchObject({ used_by: 'doc_measure' });
    const outputs = () => q(`SELECT id, output::text FROM superduper.out_doc_measure ORDER BY id`);
    await eventually(async () => (await outputs())[0]?.output === 'HELLO', 10_000, 'the new version to be swapped in');
    expect((await applications())[0].components.map((c: { name: string }) => c.name)).toEqual(['shout', 'doc_measure']);
    // Nothing uses it any more: it can go.
    expect(await db.remove('measure')).toEqual([{ type: 'model', name: 'measure', action: 'removed' }]);
  });

  it('removes what its new spec no longer lists', async () => {
    await db.apply(searchApp());
    const [result] = await db.apply(searchApp({}, false));
    expect(result!.components!.map((c) => [c.name, c.action])).toEqual([
      ['doc_index', 'removed'],
      ['measure', 'unchanged'],
      ['doc_measure', 'unchanged'],
    ]);
    expect(await registry()).toEqual({ models: ['measure'], listeners: ['doc_measure'], indexes: [] });
  });

  it('is removed with its components, later ones first, keeping those another application holds', async () => {
    await db.apply(searchApp());
    await db.apply(application({ name: 'other', components: [measure, listener({ name: 'other_measure', model: 'measure', table: 'Docs', keys: ['body'] })] }));
    const removed = await db.remove(APP);
    expect(removed.map((r) => [r.type, r.name, r.action])).toEqual([
      ['vector_index', 'doc_index', 'removed'],
      ['listener', 'doc_measure', 'removed'],
      ['model', 'measure', 'kept'],
      ['application', APP, 'removed'],
    ]);
    expect(removed[2]).toMatchObject({ held_by: 'other' });
    expect(await registry()).toEqual({ models: ['measure'], listeners: ['other_measure'], indexes: [] });
    expect(await q(`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'out_doc_measure'`)).toEqual([{ n: 0 }]);
    await db.remove('other');
    expect(await registry()).toEqual({ models: [], listeners: [], indexes: [] });
    expect(await applications()).toEqual([]);
  });

  it('shows a component removed on its own as missing, and brings it back when applied again', async () => {
    await db.apply(searchApp());
    await db.remove('doc_index');
    expect((await applications())[0].components[2]).toEqual({ type: 'vector_index', name: 'doc_index', present: false });
    const [again] = await db.apply(searchApp());
    expect(again!.components!.find((c) => c.name === 'doc_index')).toMatchObject({
      action: 'created',
    });
    expect((await applications())[0].components[2]).toMatchObject({ present: true });
  });

  it('is applied and removed from SQL, in the caller\'s transaction', async () => {
    await db.apply(measure);
    const spec = {
      type: 'application',
      name: 'from_sql',
      components: [{ type: 'listener', name: 'sql_measure', model: 'measure', table: 'Docs', keys: ['body'] }],
    };
    const client = await database.sql.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT superduper.apply($1::jsonb)', [JSON.stringify(spec)]);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect(await registry()).toEqual({ models: ['measure'], listeners: [], indexes: [] });
    const [{ r }] = await q('SELECT superduper.apply($1::jsonb) AS r', [JSON.stringify(spec)]);
    expect(r).toMatchObject({ type: 'application', name: 'from_sql', action: 'created' });
    const [{ removed }] = await q(`SELECT superduper.remove('from_sql') AS removed`);
    expect(removed.map((x: { name: string }) => x.name)).toEqual(['sql_measure', 'from_sql']);
    expect(await registry()).toEqual({ models: ['measure'], listeners: [], indexes: [] });
  });

  it('refuses a remove that would take what something outside it uses, and removes nothing', async () => {
    await db.apply(searchApp());
    await db.apply(shout, listener({ name: 'outside', model: 'shout', schema: 'superduper', table: 'out_doc_measure', keys: ['output'] }));
    await expect(db.remove(APP)).rejects.toThrow(/application "Docs "search"; app": cannot remove its listener "doc_measure": listener "doc_measure" is read by listener\(s\) outside/);
    expect(await registry()).toEqual({ models: ['measure', 'shout'], listeners: ['doc_measure', 'outside'], indexes: ['doc_index'] });
    expect(await applications()).toHaveLength(1);
  });

  it('refuses a bad application spec with a message that names it, applying nothing', async () => {
    const bad = (spec: Record<string, unknown>) => db.apply({ type: 'application', ...spec });
    await expect(bad({ components: [] })).rejects.toThrow(/an application needs a "name"/);
    await expect(bad({ name: 'a', components: [] })).rejects.toThrow(/application "a": "components" must be a non-empty array/);
    await expect(bad({ name: 'a', component: [] })).rejects.toThrow(/application "a": unknown field\(s\) 'component'/);
    await expect(bad({ name: 'a', components: [{ name: 'x' }] })).rejects.toThrow(/application "a": component 1 must be a spec with "type" and "name"/);
    await expect(bad({ name: 'a', components: [{ type: 'application', name: 'b', components: [] }] })).rejects.toThrow(/applications do not nest/);
    await expect(
      bad({ name: 'a', components: [{ type: 'model', name: 'm', runtime: 'function' }, { type: 'model', name: 'm', runtime: 'function' }] }),
    ).rejects.toThrow(/application "a": model "m" is listed twice/);
    // The second component is wrong: the first is not left behind.
    await expect(
      bad({
        name: 'a',
        components: [
          { type: 'listener', name: 'first', model: 'default-embedder', table: 'Docs', keys: ['body'] },
          { type: 'listener', name: 'second', model: 'no_such_model', table: 'Docs', keys: ['body'] },
        ],
      }),
    ).rejects.toThrow(/no_such_model/);
    expect(await registry()).toEqual({ models: [], listeners: [], indexes: [] });
    expect(await applications()).toEqual([]);
    // Named like a component: remove() would take the application for it.
    await db.apply(measure);
    await expect(bad({ name: 'measure', components: [{ type: 'listener', name: 'l', model: 'measure', table: 'Docs', keys: ['body'] }] })).rejects.toThrow(
      /application "measure": a component is named "measure" already/,
    );
  });
});
