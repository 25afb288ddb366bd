// Removing, rebuilding and indexing listeners while a sidecar is writing their
// outputs, and while users delete rows. The sidecar's claims and writes lock the
// source and outputs tables in one order, and DDL on them once took the same
// locks in another: a remove could fail with "deadlock detected". A user's
// command must never be the victim of the sidecar's work.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;

const ROWS = 4000;
// Small batches and a model that yields: many claim and write transactions, so
// that some are always in flight when the DDL arrives.
const settings = { batch_size: 16, chunk_size: 200 };
const slowLength = functionModel({
  name: 'slow_length',
  output: { type: 'vector', dim: 2 },
  predict: async (ins: string[]) => {
    await new Promise((resolve) => setTimeout(resolve, 2));
    return ins.map((t) => [t.length, 1]);
  },
});
const firstWord = functionModel({ name: 'first_word', output: { type: 'text' }, predict: (ins: string[]) => ins.map((t) => t.split(' ')[0]!) });

beforeAll(async () => {
  database = await createTestDatabase('ddl_during_work');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE "Notes; x" (id int PRIMARY KEY, body text NOT NULL)`);
  await database.sql.query(`INSERT INTO "Notes; x" SELECT g, 'note number ' || g FROM generate_series(1, ${ROWS}) AS g`);
  await db.apply(slowLength, firstWord);
  await db.start({ reconcileMs: 50, concurrency: 3 });
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

const outputsOf = async (table: string) =>
  (await database.sql.query(`SELECT count(*)::int AS n FROM superduper.${table}`)).rows[0].n as number;

/** Waits until the sidecar has written some outputs: its transactions are in flight. */
const whileWriting = (table: string) => eventually(async () => (await outputsOf(table)) > 0, 20_000, `outputs in ${table}`);

/** A user deleting and re-inserting rows, each in its own transaction, until stopped. */
function churn() {
  let stop = false;
  const done = (async () => {
    for (let id = 1; !stop; id = (id % ROWS) + 1) {
      await database.sql.query(
        `WITH gone AS (DELETE FROM "Notes; x" WHERE id = $1 RETURNING id, body) INSERT INTO "Notes; x" SELECT id, body FROM gone`,
        [id],
      );
    }
  })();
  return async () => {
    stop = true;
    await done;
  };
}

describe('DDL while the sidecar works', () => {
  it('remove, during backfill and user deletes, never deadlocks', async () => {
    const stopChurn = churn();
    try {
      for (let round = 0; round < 6; round++) {
        await db.apply(listener({ name: 'lengths', model: 'slow_length', table: 'Notes; x', keys: ['body'], settings }));
        await whileWriting('out_lengths');
        await expect(db.remove('lengths')).resolves.toMatchObject([{ name: 'lengths', action: 'removed' }]);
      }
    } finally {
      await stopChurn();
    }
    const left = await database.sql.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'out\\_%'`);
    expect(left.rows[0].n).toBe(0);
  });

  it('remove with cascade, of a chain and its vector index, never deadlocks', async () => {
    for (let round = 0; round < 4; round++) {
      await db.apply(
        listener({ name: 'words', model: 'first_word', table: 'Notes; x', keys: ['body'], settings }),
        listener({ name: 'word_lengths', model: 'slow_length', table: 'out_words', schema: 'superduper', keys: ['output'], settings }),
        vectorIndex({ name: 'word_search', listener: 'word_lengths' }),
      );
      await whileWriting('out_word_lengths');
      const removed = await db.remove('words', { cascade: true });
      expect(removed.map((r) => r.name)).toEqual(['word_search', 'word_lengths', 'words']);
    }
  });

  it('a filter changed in place while users write and the sidecar writes never deadlocks', async () => {
    const stopChurn = churn();
    try {
      await db.apply(listener({ name: 'filtered', model: 'slow_length', table: 'Notes; x', keys: ['body'], settings }));
      await whileWriting('out_filtered');
      const [applied] = await db.apply(
        listener({ name: 'filtered', model: 'slow_length', table: 'Notes; x', keys: ['body'], filter: 'id % 2 = 0', settings }),
      );
      expect(applied).toMatchObject({ name: 'filtered', action: 'updated' });
    } finally {
      await stopChurn();
    }
    await db.waitUntilIdle({ timeoutMs: 60_000 });
    const outputs = await database.sql.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE id % 2 = 1)::int AS odd FROM superduper.out_filtered`);
    expect(outputs.rows[0]).toEqual({ n: ROWS / 2, odd: 0 });
    await db.remove('filtered');
  });

  it('a new version, built and promoted while users write and the old version is being written, never deadlocks', async () => {
    const stopChurn = churn();
    try {
      await db.apply(listener({ name: 'rebuilt', model: 'slow_length', table: 'Notes; x', keys: ['body'], settings }));
      await whileWriting('out_rebuilt');
      // Another model: a new version, promoted over the old one when complete.
      const [applied] = await db.apply(listener({ name: 'rebuilt', model: 'first_word', table: 'Notes; x', keys: ['body'], settings }));
      expect(applied).toMatchObject({ name: 'rebuilt', action: 'rebuilding' });
      await eventually(async () => (await db.status()).find((s) => s.listener === 'rebuilt')?.state === 'current', 60_000, 'promotion');
    } finally {
      await stopChurn();
    }
    await db.waitUntilIdle({ timeoutMs: 60_000 });
    const outputs = await database.sql.query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE o.output = 'note')::int AS new_model
       FROM "Notes; x" AS n JOIN superduper.out_rebuilt AS o USING (id)`,
    );
    expect(outputs.rows[0]).toEqual({ n: ROWS, new_model: ROWS });
    await db.remove('rebuilt');
  });
});
