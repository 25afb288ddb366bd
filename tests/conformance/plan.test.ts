/**
 * Plan before apply (sql/functions/043_plan.sql): what an apply would do, from
 * the apply itself run and rolled back: the same actions and refusals, each
 * marked destructive or not, a listener's rows to compute, an estimate of the
 * tokens an API model's backfill sends; and nothing left behind.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { openaiEmbeddings } from '../../src/components/api-model.js';
import { application } from '../../src/components/application.js';
import { listener } from '../../src/components/listener.js';
import { onnxModel } from '../../src/components/model.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { linearModel } from '../../src/models/onnx-builder.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

const measure = functionModel({ name: 'measure', output: { type: 'vector', dim: 2 }, predict: (ins: string[]) => ins.map((t) => [t.length, 1]) });
const shout = functionModel({ name: 'shout', output: { type: 'text' }, predict: (ins: string[]) => ins.map((t) => t.toUpperCase()) });
const app = (model = measure, withIndex = true) =>
  application({
    name: 'search',
    // measure stays listed: a listener being rebuilt computes with it until its new version is complete.
    components: [
      measure,
      listener({ name: 'doc_measure', model, table: 'docs', keys: ['body'] }),
      ...(withIndex ? [vectorIndex({ name: 'doc_index', listener: 'doc_measure' })] : []),
    ],
  });

/** Everything an apply leaves: registry rows, outputs tables, triggers on the source. */
const footprint = async () => ({
  registry: await q(`SELECT (SELECT count(*)::int FROM superduper._listeners) AS listeners, (SELECT count(*)::int FROM superduper._vector_indexes) AS indexes,
                            (SELECT count(*)::int FROM superduper._applications) AS applications, (SELECT count(*)::int FROM superduper._models) AS models`),
  tables: (await q(`SELECT relname FROM pg_class WHERE relnamespace = 'superduper'::regnamespace AND relname LIKE 'out\\_%' ORDER BY 1`)).map((r) => r.relname),
  triggers: (await q(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'docs'::regclass ORDER BY 1`)).map((r) => r.tgname),
  versions: await q(`SELECT name, version, state FROM superduper._listeners ORDER BY name, version`),
});

beforeEach(async () => {
  database = await createTestDatabase('plan');
  db = await connectTest(database);
  await q(`CREATE TABLE docs (id int PRIMARY KEY, body text); INSERT INTO docs VALUES (1, 'hello'), (2, 'moon'), (3, 'sun')`);
  await db.apply(measure, shout);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

describe('plan', () => {
  it('says what a first apply would create, with the rows to compute, and leaves nothing', async () => {
    const before = await footprint();
    const [plan] = await db.plan(app());
    expect(plan).toMatchObject({ type: 'application', name: 'search', action: 'created', destructive: false });
    expect(plan!.components!.map((c) => [c.type, c.name, c.action, c.destructive, c.rows])).toEqual([
      ['model', 'measure', 'unchanged', false, undefined],
      ['listener', 'doc_measure', 'created', false, 3],
      // The vectors there to index now: none yet (the listener's come as they are computed).
      ['vector_index', 'doc_index', 'created', false, 0],
    ]);
    expect(await footprint()).toEqual(before);
    // The apply then does what the plan said.
    const [applied] = await db.apply(app());
    expect(applied!.components!.map((c) => [c.name, c.action])).toEqual(plan!.components!.map((c) => [c.name, c.action]));
  });

  it('marks a rebuild and a removal destructive, and changes nothing', async () => {
    await db.apply(app());
    const before = await footprint();
    const [rebuild] = await db.plan(app(shout, false));
    expect(rebuild).toMatchObject({ action: 'updated', destructive: true });
    expect(rebuild!.components!.map((c) => [c.name, c.action, c.destructive])).toEqual([
      ['doc_index', 'removed', true],
      ['measure', 'unchanged', false],
      ['shout', 'unchanged', false],
      ['doc_measure', 'rebuilding', true],
    ]);
    expect(rebuild!.components!.find((c) => c.name === 'doc_measure')).toMatchObject({ rows: 3 });
    const [same] = await db.plan(app());
    expect(same).toMatchObject({ action: 'unchanged', destructive: false });
    expect(await footprint()).toEqual(before);
  });

  it('checks what building a vector index would check, without building its graph, and leaves no setting behind', async () => {
    await db.apply(app());
    // The listener's new model writes text: its vector index cannot take that.
    const broken = application({ name: 'search', components: [measure, listener({ name: 'doc_measure', model: shout, table: 'docs', keys: ['body'] }), vectorIndex({ name: 'doc_index', listener: 'doc_measure' })] });
    const applyError = await db.apply(broken).catch((error: Error) => error.message);
    expect(applyError).toMatch(/operator class .* does not accept data type text/);
    expect(await db.plan(broken).catch((error: Error) => error.message)).toBe(applyError);
    const client = await database.sql.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT superduper.plan($1::jsonb)`, [JSON.stringify(app().spec)]);
      expect((await client.query(`SELECT coalesce(current_setting('superduper.planning', true), '') AS s`)).rows).toEqual([{ s: '' }]);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('plans a model whose file is not stored yet, storing nothing', async () => {
    const artifacts = async () => (await q(`SELECT count(*)::int AS n FROM superduper._artifacts`))[0].n;
    const before = await artifacts();
    const lin = onnxModel({ name: 'lin', file: linearModel({ inputDim: 1, outputDim: 2, seed: 3 }), output: { type: 'vector', dim: 2 } });
    expect(await db.plan(lin)).toMatchObject([{ type: 'model', name: 'lin', action: 'created', destructive: false }]);
    expect(await artifacts()).toBe(before);
    expect(await db.apply(lin)).toMatchObject([{ type: 'model', name: 'lin', action: 'created' }]);
    expect((await q(`SELECT length(a.bytes) > 0 AS stored FROM superduper._artifacts a JOIN superduper._models m ON m.artifact = a.sha256 WHERE m.name = 'lin'`))[0]).toEqual({ stored: true });
  });

  it('refuses what apply refuses, with the same message', async () => {
    const bad = listener({ name: 'bad', model: 'no_such_model', table: 'docs', keys: ['body'] });
    const applyError = await db.apply(bad).catch((error: Error) => error.message);
    const planError = await db.plan(bad).catch((error: Error) => error.message);
    expect(planError).toBe(applyError);
    expect(planError).toMatch(/no_such_model/);
  });

  it('estimates the tokens an API model would be sent, at four characters a token', async () => {
    const [plan] = await db.plan(
      openaiEmbeddings({ name: 'oa', model: 'text-embedding-3-small', dim: 4, baseUrl: 'http://127.0.0.1:9/v1' }),
      listener({ name: 'doc_oa', model: 'oa', table: 'docs', keys: ['body'] }),
    ).then((results) => results.filter((r) => r.type === 'listener'));
    // 'hello', 'moon', 'sun': 12 characters, 4 a row, 3 rows: 3 tokens.
    expect(plan).toMatchObject({ name: 'doc_oa', action: 'created', rows: 3, tokens_estimate: 3 });
    expect((await q(`SELECT count(*)::int AS n FROM superduper._models WHERE name = 'oa'`))[0].n).toBe(0);
  });
});
