import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { countingFeatureModel, features } from '../helpers/models.js';

let database: TestDatabase;
let db: Superduper;
const model = countingFeatureModel();

// A database per test: the tests create tables of the same names.
beforeEach(async () => {
  database = await createTestDatabase('keys');
  db = await connectTest(database);
  await db.apply(model);
  await db.start({ reconcileMs: 200 });
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

/** Every row of the source has an output equal to features(text), and nothing else does. */
async function expectJoinable(source: string, outputs: string, joinOn: string, textColumn: string) {
  const joined = await database.sql.query<{ text: string; output: string | null }>(
    `SELECT s.${textColumn} AS text, o.output::text AS output FROM ${source} s LEFT JOIN ${outputs} o ON ${joinOn}`,
  );
  expect(joined.rows.length).toBeGreaterThan(0);
  for (const row of joined.rows) expect(JSON.parse(row.output ?? 'null')).toEqual(features(row.text));
  const orphans = await database.sql.query(`SELECT count(*)::int AS n FROM ${outputs} o WHERE NOT EXISTS (SELECT 1 FROM ${source} s WHERE ${joinOn})`);
  expect(orphans.rows[0].n).toBe(0);
}

/** Tables keyed by a uuid, a text, a pair and a timestamp, each with a listener, changed once and computed. */
async function keyedTables(): Promise<void> {
  await database.sql.query(`
    CREATE TABLE by_uuid (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), body text);
    CREATE TABLE by_text (code text PRIMARY KEY, body text);
    CREATE TABLE by_pair (region text, n bigint, body text, PRIMARY KEY (region, n));
    CREATE TABLE by_time (at timestamptz PRIMARY KEY, body text);
    INSERT INTO by_uuid (body) VALUES ('one'), ('two 2');
    INSERT INTO by_text VALUES ('a', 'first'), ('b''s key, with {braces} and "quotes"', 'second 22');
    INSERT INTO by_pair VALUES ('eu', 9007199254740993, 'big key'), ('us', 1, 'small key');
    INSERT INTO by_time VALUES ('2024-01-01 10:00:00.123456+00', 'micro'), ('2024-01-01 10:00:00.123457+00', 'seconds');
  `);
  await db.apply(
    listener({ name: 'uuid_l', model: 'features', table: 'by_uuid', keys: ['body'] }),
    listener({ name: 'text_l', model: 'features', table: 'by_text', keys: ['body'] }),
    listener({ name: 'pair_l', model: 'features', table: 'by_pair', keys: ['body'] }),
    listener({ name: 'time_l', model: 'features', table: 'by_time', keys: ['body'] }),
  );
  await database.sql.query(`INSERT INTO by_pair VALUES ('eu', 2, 'inserted later 123')`);
  await database.sql.query(`UPDATE by_text SET body = 'changed' WHERE code = 'a'`);
  await db.waitUntilIdle();
}

describe('primary keys of any type', () => {
  it('integer, uuid, text and composite keys', async () => {
    await keyedTables();
    await expectJoinable('by_uuid', 'superduper.out_uuid_l', 'o.id = s.id', 'body');
    await expectJoinable('by_text', 'superduper.out_text_l', 'o.code = s.code', 'body');
    await expectJoinable('by_pair', 'superduper.out_pair_l', 'o.region = s.region AND o.n = s.n', 'body');
    await expectJoinable('by_time', 'superduper.out_time_l', 'o.at = s.at', 'body');
    // The outputs table copies the key's types, so joins use its index.
    const types = await database.sql.query(
      `SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute
       WHERE attrelid = 'superduper.out_pair_l'::regclass AND attnum > 0 ORDER BY attnum`,
    );
    expect(types.rows.map((r) => `${r.attname} ${r.type}`)).toEqual([
      'region text',
      'n bigint',
      'output vector(3)',
      '_stamp bigint',
      '_computed_at timestamp with time zone',
    ]);
  });

  it('a primary key change moves the work to the new key', async () => {
    await keyedTables();
    await database.sql.query(`UPDATE by_text SET code = 'z' WHERE code = 'a'`);
    const moved = await database.sql.query(`SELECT count(*)::int AS n FROM superduper.out_text_l WHERE code = 'a'`);
    expect(moved.rows[0].n).toBe(0); // the old key's output went with the old key
    await db.waitUntilIdle();
    await expectJoinable('by_text', 'superduper.out_text_l', 'o.code = s.code', 'body');
  });

  it('several key columns reach the model as one object per row', async () => {
    await database.sql.query(`CREATE TABLE pairs (id int PRIMARY KEY, a text, b int); INSERT INTO pairs VALUES (1, 'x', 2)`);
    const seen: unknown[] = [];
    const { functionModel } = await import('../../src/models/function-runtime.js');
    await db.apply(
      functionModel({ name: 'echo', output: { type: 'jsonb' }, predict: (rows: unknown[]) => rows.map((r) => (seen.push(r), r)) }),
      listener({ name: 'pairs_echo', model: 'echo', table: 'pairs', keys: ['a', 'b'] }),
    );
    await db.waitUntilIdle();
    expect(seen).toEqual([{ a: 'x', b: 2 }]);
    const out = await database.sql.query(`SELECT output FROM superduper.out_pairs_echo`);
    expect(out.rows[0].output).toEqual({ a: 'x', b: 2 });
  });
});

describe('hostile identifiers', () => {
  it('quotes, spaces, upper case and semicolons in schema, table, key and column names', async () => {
    await database.sql.query(`
      CREATE SCHEMA "Odd ""Schema""; x";
      CREATE TABLE "Odd ""Schema""; x"."My ""Docs""; DROP TABLE x; --" (
        "ID ""quoted""" integer PRIMARY KEY,
        "Body Text; --" text,
        "UPPER" text
      );
      INSERT INTO "Odd ""Schema""; x"."My ""Docs""; DROP TABLE x; --" VALUES (1, 'hello there', 'a'), (2, 'second 2', 'b');
    `);
    const name = `Weird "listener"; drop`;
    const [result] = await db.apply(
      listener({
        name,
        model: 'features',
        schema: 'Odd "Schema"; x',
        table: 'My "Docs"; DROP TABLE x; --',
        keys: ['Body Text; --'],
        filter: `"UPPER" <> 'zzz'`,
      }),
    );
    expect(result).toMatchObject({ action: 'created', backfill: 2 });
    await database.sql.query(`INSERT INTO "Odd ""Schema""; x"."My ""Docs""; DROP TABLE x; --" VALUES (3, 'third 333', 'c')`);
    await database.sql.query(`UPDATE "Odd ""Schema""; x"."My ""Docs""; DROP TABLE x; --" SET "Body Text; --" = 'edited' WHERE "ID ""quoted""" = 1`);
    await database.sql.query(`DELETE FROM "Odd ""Schema""; x"."My ""Docs""; DROP TABLE x; --" WHERE "ID ""quoted""" = 2`);
    await db.waitUntilIdle();
    const outputs = await db.outputsTable(name);
    expect(outputs).toBe(`superduper."out_Weird ""listener""; drop"`);
    await expectJoinable(
      `"Odd ""Schema""; x"."My ""Docs""; DROP TABLE x; --"`,
      outputs,
      `o."ID ""quoted""" = s."ID ""quoted"""`,
      `"Body Text; --"`,
    );
    const status = (await db.status()).find((s) => s.listener === name);
    expect(status).toMatchObject({ done: 2, pending: 0, failed: 0 });
    await db.remove(name);
    const triggers = await database.sql.query(
      `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = '"Odd ""Schema""; x"."My ""Docs""; DROP TABLE x; --"'::regclass AND NOT tgisinternal`,
    );
    expect(triggers.rows[0].n).toBe(0);
  });
});
