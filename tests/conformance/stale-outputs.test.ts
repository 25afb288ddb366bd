import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * The contract for a row whose current value fails for good: its output from an
 * earlier value is withdrawn, so that no output passes for current. The
 * failures view says so (withdrawn), status counts it, and an older computation
 * that finishes later can neither bring the output back nor clear the failure.
 */
let database: TestDatabase;
let db: Superduper;
let listenerId: number;

const upper = functionModel({
  name: 'picky_upper',
  output: { type: 'text' },
  predict: (texts: string[]) =>
    texts.map((text) => {
      if (text.startsWith('bad')) throw new Error(`refusing "${text}"`);
      return text.toUpperCase();
    }),
});

// A database per test: each starts from an empty table, and reads the status of its only listener.
beforeEach(async () => {
  database = await createTestDatabase('stale_outputs');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE "Quotes; x" ("Id" int PRIMARY KEY, body text)`);
  await db.apply(upper, listener({ name: 'quotes', model: 'picky_upper', table: 'Quotes; x', keys: ['body'], settings: { max_attempts: 2, backoff_seconds: 0.1 } }));
  listenerId = (await database.sql.query(`SELECT id FROM superduper._listeners WHERE name = 'quotes'`)).rows[0].id;
  await db.start({ reconcileMs: 100 });
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

const output = async (id: number) =>
  (await database.sql.query(`SELECT output FROM superduper.out_quotes WHERE "Id" = $1`, [id])).rows[0]?.output as string | undefined;
const failure = async (id: number) =>
  (await database.sql.query(`SELECT error, withdrawn FROM superduper.failures WHERE listener = 'quotes' AND primary_key = $1`, [JSON.stringify([String(id)])]))
    .rows[0] as { error: string; withdrawn: boolean } | undefined;

/**
 * What the first test does, without its checks: row 1 computed, then failed
 * for good (its output withdrawn), row 2 computed, row 3 failed from the start.
 */
async function failRows(): Promise<void> {
  await database.sql.query(`INSERT INTO "Quotes; x" VALUES (1, 'good'), (2, 'fine')`);
  await db.waitFor('quotes');
  await database.sql.query(`UPDATE "Quotes; x" SET body = 'bad now' WHERE "Id" = 1`);
  await db.waitFor('quotes');
  await database.sql.query(`INSERT INTO "Quotes; x" VALUES (3, 'bad from the start')`);
  await db.waitFor('quotes');
}

describe('a row whose current value fails for good', () => {
  it('loses the output of its earlier value, and the failures view and status say so', async () => {
    await database.sql.query(`INSERT INTO "Quotes; x" VALUES (1, 'good'), (2, 'fine')`);
    await db.waitFor('quotes');
    expect(await output(1)).toBe('GOOD');
    await database.sql.query(`UPDATE "Quotes; x" SET body = 'bad now' WHERE "Id" = 1`);
    const { failed } = await db.waitFor('quotes');
    expect(failed).toMatchObject([{ primary_key: ['1'], error: expect.stringMatching(/refusing "bad now"/) }]);
    expect(await output(1)).toBeUndefined();
    expect(await failure(1)).toEqual({ error: expect.stringMatching(/refusing/), withdrawn: true });
    expect(await output(2)).toBe('FINE');
    const [status] = await db.status();
    expect(status).toMatchObject({ listener: 'quotes', failed: 1, withdrawn: 1, done: 1 });
    // A row that failed with no output before has nothing withdrawn.
    await database.sql.query(`INSERT INTO "Quotes; x" VALUES (3, 'bad from the start')`);
    await db.waitFor('quotes');
    expect(await failure(3)).toMatchObject({ withdrawn: false });
    expect((await db.status())[0]).toMatchObject({ failed: 2, withdrawn: 1 });
  });

  it('a NULL key value (which no retry can fix) withdraws the earlier output too', async () => {
    await failRows();
    await database.sql.query(`UPDATE "Quotes; x" SET body = NULL WHERE "Id" = 2`);
    const { failed } = await db.waitFor('quotes');
    expect(failed.map((f) => f.primary_key)).toContainEqual(['2']);
    expect(await output(2)).toBeUndefined();
    expect(await failure(2)).toMatchObject({ withdrawn: true });
  });

  it('an older computation finishing late can neither bring the output back nor clear the failure', async () => {
    await failRows();
    const stamp = (await database.sql.query(`SELECT stamp FROM superduper._failures WHERE listener_id = $1 AND pk = '["1"]'`, [listenerId])).rows[0].stamp;
    expect(Number(stamp)).toBeGreaterThan(0);
    // The write a sidecar that read the earlier value would make now.
    await database.sql.query(
      `SELECT superduper."_l${listenerId}_write"(ARRAY['1'], ARRAY['GOOD'], ARRAY[$1::bigint - 1], '{}', '{}', '{}', NULL, '{}', '{}')`,
      [stamp],
    );
    expect(await output(1)).toBeUndefined();
    expect(await failure(1)).toMatchObject({ withdrawn: true });
  });

  it('computes again when the row changes, or on retry, and the failure goes', async () => {
    await failRows();
    await database.sql.query(`UPDATE "Quotes; x" SET body = 'good again' WHERE "Id" = 1`);
    await database.sql.query(`UPDATE "Quotes; x" SET body = 'fine again' WHERE "Id" = 2`);
    await db.waitFor('quotes');
    expect(await output(1)).toBe('GOOD AGAIN');
    expect(await output(2)).toBe('FINE AGAIN');
    expect(await failure(1)).toBeUndefined();
    await database.sql.query(`DELETE FROM "Quotes; x" WHERE "Id" = 3`);
    expect(await failure(3)).toBeUndefined(); // a deleted row's failure goes with it
    expect((await db.status())[0]).toMatchObject({ failed: 0, withdrawn: 0, done: 2 });
    expect((await db.waitFor('quotes')).failed).toEqual([]);
  });
});
