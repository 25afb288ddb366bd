import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';

/** A deterministic 3-d "embedding": length, vowels, digits. */
const features = (text: string) => [text.length, (text.match(/[aeiou]/g) ?? []).length, (text.match(/\d/g) ?? []).length];
const featureModel = functionModel({
  name: 'features',
  output: { type: 'vector', dim: 3 },
  predict: (inputs: string[]) => inputs.map(features),
});

let database: TestDatabase;
let db: Superduper;

// A database per test, with the three rows: the tests count every output and
// the whole change log, and the status of the only listener.
beforeEach(async () => {
  database = await createTestDatabase('basics');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE docs (id serial PRIMARY KEY, body text, note text)`);
  await database.sql.query(`INSERT INTO docs (body) VALUES ('alpha one'), ('beta 22'), ('gamma 333')`);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

/** Listener docs_features, its backfill done, with a sidecar running. */
async function applyDocsFeatures(): Promise<void> {
  await db.apply(featureModel, listener({ name: 'docs_features', model: 'features', table: 'docs', keys: ['body'] }));
  await db.start({ reconcileMs: 200 });
  await db.waitUntilIdle({ timeoutMs: 10_000 });
}

/** Two rows inserted, row 1 updated, row 2 deleted. */
async function changeDocs(): Promise<void> {
  await database.sql.query(`INSERT INTO docs (body) VALUES ('delta 4444'), ('epsilon')`);
  await database.sql.query(`UPDATE docs SET body = 'alpha changed 1' WHERE id = 1`);
  await database.sql.query(`DELETE FROM docs WHERE id = 2`);
}

async function outputs(): Promise<Map<number, number[]>> {
  const result = await database.sql.query<{ id: number; output: string }>(
    'SELECT id, output::text FROM superduper.out_docs_features ORDER BY id',
  );
  return new Map(result.rows.map((row) => [row.id, JSON.parse(row.output) as number[]]));
}

async function expectOutputsMatchRows() {
  const rows = await database.sql.query<{ id: number; body: string }>('SELECT id, body FROM docs ORDER BY id');
  const out = await outputs();
  expect([...out.keys()]).toEqual(rows.rows.map((r) => r.id));
  for (const row of rows.rows) expect(out.get(row.id)).toEqual(features(row.body));
}

// Backfill, re-applying a spec, and following changes as any backend does: any-store/listeners.test.ts.
describe('a listener kept current by triggers and a sidecar', () => {
  it('computes inserted and updated rows and removes deleted ones', async () => {
    await applyDocsFeatures();
    await changeDocs();
    expect((await outputs()).has(2)).toBe(false); // removed in the DELETE's own transaction
    await db.waitUntilIdle();
    await expectOutputsMatchRows();
  });

  it('an UPDATE that changes no key column enqueues nothing', async () => {
    await applyDocsFeatures();
    const client = await database.sql.connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE docs SET note = 'x'`);
      const queued = await client.query(`SELECT count(*)::int AS n FROM superduper._changes`);
      expect(queued.rows[0].n).toBe(0);
      await client.query(`UPDATE docs SET body = body || '!' WHERE id = 1`);
      const queuedAfterKeyChange = await client.query(`SELECT count(*)::int AS n FROM superduper._changes`);
      expect(queuedAfterKeyChange.rows[0].n).toBe(1);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('reports status per listener', async () => {
    await applyDocsFeatures();
    await changeDocs();
    await db.waitUntilIdle();
    const [status] = await db.status();
    expect(status).toMatchObject({ listener: 'docs_features', state: 'current', pending: 0, in_flight: 0, failed: 0, done: 4 });
  });

  it('TRUNCATE clears the outputs and the queue', async () => {
    await applyDocsFeatures();
    await database.sql.query('TRUNCATE docs');
    expect((await outputs()).size).toBe(0);
    await database.sql.query(`INSERT INTO docs (body) VALUES ('after truncate')`);
    await db.waitUntilIdle();
    await eventually(async () => (await outputs()).size === 1);
    await expectOutputsMatchRows();
  });
});
