import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';
import { countingFeatureModel } from '../helpers/models.js';

let database: TestDatabase;
let db: Superduper;

/**
 * A database for the tests of the enclosing describe, with model features and
 * tables docs, no_pk and docs_view. Each describe has its own: the first checks
 * that no trigger at all is left, and the second's listeners leave some.
 */
function useDatabase(label: string): void {
  beforeAll(async () => {
    database = await createTestDatabase(label);
    db = await connectTest(database);
    await db.apply(countingFeatureModel());
    await database.sql.query(`
      CREATE TABLE docs (id int PRIMARY KEY, body text);
      CREATE TABLE no_pk (body text);
      CREATE VIEW docs_view AS SELECT * FROM docs;
      INSERT INTO docs VALUES (1, 'one'), (2, 'two');
    `);
  });

  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });
}

/** Nothing of a failed apply is left: no registry row, no outputs table, no triggers. */
async function expectNothingInstalled(name: string) {
  const rows = await database.sql.query(`SELECT count(*)::int AS n FROM superduper._listeners WHERE name = $1`, [name]);
  expect(rows.rows[0].n).toBe(0);
  const table = await database.sql.query(`SELECT to_regclass($1) AS t`, [`superduper."out_${name}"`]);
  expect(table.rows[0].t).toBeNull();
  const triggers = await database.sql.query(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'superduper_%'`);
  expect(triggers.rows[0].n).toBe(0);
}

async function applyFails(spec: Record<string, unknown>, message: RegExp) {
  await expect(db.apply(spec)).rejects.toThrow(message);
  await expectNothingInstalled(String(spec.name));
}

const base = { type: 'listener', name: 'l', model: 'features', table: 'docs', keys: ['body'] };

describe('apply rejects bad specs with errors that name the object, and leaves nothing behind', () => {
  useDatabase('bad_specs');

  it('a missing table', () => applyFails({ ...base, table: 'nope' }, /listener "l": table nope does not exist/));
  it('a missing column', () => applyFails({ ...base, keys: ['bdy'] }, /listener "l": table public.docs has no column bdy/));
  it('an unknown model', () => applyFails({ ...base, model: 'gpt-17' }, /listener "l": unknown model "gpt-17"/));
  it('a table without a primary key', () => applyFails({ ...base, table: 'no_pk' }, /listener "l": table public.no_pk has no primary key/));
  it('a view', () => applyFails({ ...base, table: 'docs_view' }, /listener "l": public.docs_view is a view, not a table/));
  it('no keys', () => applyFails({ ...base, keys: [] }, /listener "l": "keys" must be a non-empty array/));
  it('an unknown field', () => applyFails({ ...base, colour: 'red' }, /listener "l": unknown field "colour"/));
  it('an unknown setting', () => applyFails({ ...base, settings: { batchsize: 3 } }, /listener "l": unknown setting "batchsize"/));
  it('a filter that is not an expression', () =>
    applyFails({ ...base, filter: `true; DROP TABLE docs` }, /listener "l": invalid filter 'true; DROP TABLE docs'/));
  it('a filter on a missing column', () =>
    applyFails({ ...base, filter: `colour = 'red'` }, /listener "l": invalid filter .*column "colour" does not exist/));
  it('an unknown component type', () => applyFails({ ...base, type: 'lister' }, /unknown component type 'lister'/));
  it('a model without output', () =>
    expect(db.apply({ type: 'model', name: 'm', runtime: 'onnx' })).rejects.toThrow(/model "m": "output" is missing/));
  it('a model with an unknown runtime', () =>
    expect(db.apply({ type: 'model', name: 'm', runtime: 'tensorflow', output: { type: 'text' } })).rejects.toThrow(/model "m": unknown runtime "tensorflow"/));

  it('one bad spec in a list undoes the good ones before it', async () => {
    await expect(db.apply({ ...base, name: 'good' }, { ...base, name: 'bad', keys: ['nope'] })).rejects.toThrow(/listener "bad"/);
    await expectNothingInstalled('good');
  });

  it('a listener name too long for its outputs table name', () =>
    applyFails({ ...base, name: 'x'.repeat(49) }, /is too long \(49 bytes; at most 48/));
});

describe('bad rows and bad models fail alone, with the error recorded', () => {
  useDatabase('bad_rows');

  it('NULL and empty key values go to the failures at once, naming the row and column', async () => {
    await database.sql.query(`CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'fine'), (2, NULL), (3, '')`);
    await db.apply(listener({ name: 'notes_f', model: 'features', table: 'notes', keys: ['body'] }));
    const worker = await db.start({ reconcileMs: 100 });
    await db.waitUntilIdle({ listeners: ['notes_f'] });
    const failures = await db.failures('notes_f');
    expect(failures.map((f) => [f.primary_key, f.error])).toEqual([
      [['2'], 'row ["2"]: key column body is NULL; listener "notes_f" has nothing to compute (set a value, or exclude such rows with a filter)'],
      [['3'], 'row ["3"]: key column body is empty; listener "notes_f" has nothing to compute (set a value, or exclude such rows with a filter)'],
    ]);
    // Fixing the row computes it and clears its failure.
    await database.sql.query(`UPDATE notes SET body = 'now set' WHERE id = 2`);
    await db.waitUntilIdle({ listeners: ['notes_f'] });
    expect((await db.failures('notes_f')).map((f) => f.primary_key)).toEqual([['3']]);
    const out = await database.sql.query(`SELECT id FROM superduper.out_notes_f ORDER BY id`);
    expect(out.rows.map((r) => r.id)).toEqual([1, 2]);
    await worker.stop();
  });

  it('a model that throws on some rows: the others are written, the bad ones retried with backoff then recorded', async () => {
    await database.sql.query(`CREATE TABLE items (id int PRIMARY KEY, body text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 50) g`);
    let calls = 0;
    await db.apply(
      functionModel({
        name: 'picky',
        output: { type: 'float' },
        predict: (inputs: string[]) => {
          calls++;
          if (inputs.some((text) => text.endsWith(' 13'))) throw new Error('cannot handle 13');
          return inputs.map((text) => text.length);
        },
      }),
      listener({ name: 'items_picky', model: 'picky', table: 'items', keys: ['body'], settings: { max_attempts: 3, backoff_seconds: 0.05 } }),
    );
    const worker = await db.start({ reconcileMs: 100 });
    await db.waitUntilIdle({ listeners: ['items_picky'] });
    const out = await database.sql.query(`SELECT count(*)::int AS n FROM superduper.out_items_picky`);
    expect(out.rows[0].n).toBe(49);
    const [failure] = await db.failures('items_picky');
    expect(failure).toMatchObject({ primary_key: ['13'], attempts: 3, error: 'model "picky" failed: cannot handle 13' });
    expect(calls).toBeGreaterThan(3);
    await worker.stop();
  });

  it('wrong dimension, wrong type and wrong count are row failures with a clear message', async () => {
    await database.sql.query(`CREATE TABLE shapes (id int PRIMARY KEY, body text); INSERT INTO shapes VALUES (1, 'ok'), (2, 'short'), (3, 'string')`);
    await db.apply(
      functionModel({
        name: 'shapes_model',
        output: { type: 'vector', dim: 2 },
        predict: (inputs: string[]) => inputs.map((t) => (t === 'short' ? [1] : t === 'string' ? 'oops' : [1, 2])),
      }),
      functionModel({ name: 'counts_model', output: { type: 'float' }, predict: () => [1, 2, 3, 4, 5, 6, 7] }),
      listener({ name: 'shapes_l', model: 'shapes_model', table: 'shapes', keys: ['body'], settings: { max_attempts: 1 } }),
      listener({ name: 'counts_l', model: 'counts_model', table: 'shapes', keys: ['body'], settings: { max_attempts: 1 } }),
    );
    const worker = await db.start({ reconcileMs: 100 });
    await db.waitUntilIdle({ listeners: ['shapes_l', 'counts_l'] });
    const errors = (await db.failures('shapes_l')).map((f) => [f.primary_key[0], f.error]);
    expect(errors).toEqual([
      ['2', 'model "shapes_model" returned a vector of 1 numbers; its output is declared as vector(2)'],
      ['3', 'model "shapes_model" returned a string where a vector belongs; its output is declared as vector(2)'],
    ]);
    const countErrors = (await db.failures('counts_l')).map((f) => f.error);
    expect(countErrors).toHaveLength(3);
    expect(countErrors[0]).toBe('model "counts_model" returned 7 outputs for 1 input');
    await worker.stop();
  });

  it('one failing listener does not stall another on the same table', async () => {
    await database.sql.query(`CREATE TABLE both_t (id int PRIMARY KEY, body text); INSERT INTO both_t SELECT g, 'row ' || g FROM generate_series(1, 20) g`);
    await db.apply(
      functionModel({ name: 'always_fails', output: { type: 'float' }, predict: () => { throw new Error('down'); } }),
      listener({ name: 'both_bad', model: 'always_fails', table: 'both_t', keys: ['body'], settings: { max_attempts: 2, backoff_seconds: 0.05 } }),
      listener({ name: 'both_good', model: 'features', table: 'both_t', keys: ['body'] }),
    );
    const worker = await db.start({ reconcileMs: 100 });
    await eventually(async () => {
      const r = await database.sql.query(`SELECT count(*)::int AS n FROM superduper.out_both_good`);
      return r.rows[0].n === 20;
    });
    await db.waitUntilIdle({ listeners: ['both_bad', 'both_good'] });
    expect(await db.failures('both_bad')).toHaveLength(20);
    expect(await db.retry('both_bad')).toBe(20);
    const [status] = (await db.status()).filter((s) => s.listener === 'both_bad');
    expect(status!.failed).toBe(0);
    await worker.stop();
  });
});
