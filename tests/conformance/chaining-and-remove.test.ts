import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { testBackendCapabilities } from '../helpers/backends.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';

const backend = testBackendCapabilities();
let database: TestDatabase;
let db: Superduper;

const summarize = functionModel({ name: 'summarize', output: { type: 'text' }, predict: (ins: string[]) => ins.map((t) => t.split(' ')[0]!) });
const measure = functionModel({ name: 'measure', output: { type: 'vector', dim: 2 }, predict: (ins: string[]) => ins.map((t) => [t.length, 1]) });

// A database per test: the tests count every outputs table and the whole queue,
// and remove what others build on.
beforeEach(async () => {
  database = await createTestDatabase('chaining');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE posts (id int PRIMARY KEY, body text); INSERT INTO posts VALUES (1, 'hello world'), (2, 'goodbye moon')`);
  await db.apply(summarize, measure);
  await db.start({ reconcileMs: 100 });
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

/** Listener post_summary on posts, and summary_measure on its outputs, both computed. */
async function applyChain(): Promise<void> {
  await db.apply(
    listener({ name: 'post_summary', model: 'summarize', table: 'posts', keys: ['body'] }),
    listener({ name: 'summary_measure', model: 'measure', schema: 'superduper', table: 'out_post_summary', keys: ['output'] }),
  );
  await eventually(async () => (await chainOutputs()).every((r) => r.measure !== null), 10_000, 'the chain');
}

/** Listener from_sql, declared with superduper.apply. */
const applyFromSql = () =>
  database.sql.query(
    `SELECT superduper.apply('{"type": "listener", "name": "from_sql", "model": "summarize", "table": "posts", "keys": ["body"]}') AS r`,
  );

const chainOutputs = async () =>
  (
    await database.sql.query(
      `SELECT p.id, a.output AS summary, b.output::text AS measure
       FROM posts p
       LEFT JOIN superduper.out_post_summary a USING (id)
       LEFT JOIN superduper.out_summary_measure b USING (id)
       ORDER BY p.id`,
    )
  ).rows;

describe('chaining: a listener on another listener\'s outputs', () => {
  it('computes A then B, and propagates inserts, updates and deletes down the chain', async () => {
    await applyChain();
    expect(await chainOutputs()).toEqual([
      { id: 1, summary: 'hello', measure: '[5,1]' },
      { id: 2, summary: 'goodbye', measure: '[7,1]' },
    ]);

    await database.sql.query(`INSERT INTO posts VALUES (3, 'hi there')`);
    await database.sql.query(`UPDATE posts SET body = 'greetings world' WHERE id = 1`);
    await database.sql.query(`DELETE FROM posts WHERE id = 2`);
    await eventually(async () => {
      const rows = await chainOutputs();
      return rows.length === 2 && rows.every((r) => r.measure !== null) && rows[0]!.summary === 'greetings' && rows[0]!.measure === '[9,1]';
    }, 10_000, 'the chain after changes');
    expect(await chainOutputs()).toEqual([
      { id: 1, summary: 'greetings', measure: '[9,1]' },
      { id: 3, summary: 'hi', measure: '[2,1]' },
    ]);
    const orphans = await database.sql.query(`SELECT count(*)::int AS n FROM superduper.out_summary_measure WHERE id NOT IN (SELECT id FROM posts)`);
    expect(orphans.rows[0].n).toBe(0);
  });

  it('removing A while B reads it is refused, and allowed with cascade', async () => {
    await applyChain();
    await expect(db.remove('post_summary')).rejects.toThrow(/listener "post_summary" is read by listener\(s\) summary_measure/);
    const removed = await db.remove('post_summary', { cascade: true });
    expect(removed.map((r) => r.name)).toEqual(['summary_measure', 'post_summary']);
    const tables = await database.sql.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'out\\_%'`);
    expect(tables.rows[0].n).toBe(0);
  });
});

describe('removing a listener another reads', () => {
  // (The embedded database has one session: there an open transaction block
  // holds everyone else's turn, the remove's included.)
  it.runIf(backend.concurrentSessions)("is refused at once, even while a user's open transaction holds the table that a remove would lock", async () => {
    await applyChain();
    const pg = await import('pg');
    const user = new pg.default.Client({ connectionString: database.uri });
    await user.connect();
    try {
      await user.query(`BEGIN; INSERT INTO posts VALUES (99, 'not committed yet')`);
      await expect(db.remove('post_summary')).rejects.toThrow(/is read by listener\(s\) summary_measure/);
    } finally {
      await user.query('ROLLBACK');
      await user.end();
    }
  });
});

describe('remove', () => {
  it('from SQL, keeping the outputs; writes to the table then enqueue nothing', async () => {
    await db.apply(listener({ name: 'keepme', model: 'summarize', table: 'posts', keys: ['body'] }));
    await db.waitUntilIdle();
    const result = await database.sql.query(`SELECT superduper.remove('keepme', p_keep_outputs => true) AS r`);
    expect(result.rows[0].r).toEqual([{ type: 'listener', name: 'keepme', action: 'removed', outputs: 'kept' }]);
    const kept = await database.sql.query(`SELECT count(*)::int AS n FROM superduper.out_keepme`);
    expect(kept.rows[0].n).toBe(2);
    await database.sql.query(`INSERT INTO posts VALUES (10, 'after removal')`);
    const queue = await database.sql.query(`SELECT count(*)::int AS n FROM superduper._queue`);
    expect(queue.rows[0].n).toBe(0);
    // The kept table blocks a new listener of that name until it is dealt with.
    await expect(db.apply(listener({ name: 'keepme', model: 'summarize', table: 'posts', keys: ['body'] }))).rejects.toThrow(
      /outputs table superduper.out_keepme already exists/,
    );
  });

  it('an unknown name says so and lists the listeners', async () => {
    await expect(db.remove('nope')).rejects.toThrow(/no application, listener, vector index, trainer, model or schedule named 'nope'/);
  });

  it('a model in use cannot be removed', async () => {
    await db.apply(listener({ name: 'uses_measure', model: 'measure', table: 'posts', keys: ['body'] }));
    await expect(db.remove('measure')).rejects.toThrow(/model "measure" is used by uses_measure/);
    await db.remove('uses_measure');
    await expect(db.remove('measure')).resolves.toEqual([{ type: 'model', name: 'measure', action: 'removed' }]);
  });
});

describe('declared from SQL alone', () => {
  it('superduper.apply with a JSON spec, model referenced by name', async () => {
    const result = await applyFromSql();
    expect(result.rows[0].r).toMatchObject({ action: 'created', name: 'from_sql' });
    await db.waitUntilIdle();
    const rows = await database.sql.query(`SELECT p.body, o.output FROM posts p JOIN superduper.out_from_sql o USING (id) ORDER BY id`);
    expect(rows.rows.every((r) => r.output === r.body.split(' ')[0])).toBe(true);
    const status = await database.sql.query(`SELECT listener, pending, in_flight, failed, done FROM superduper.status WHERE listener = 'from_sql'`);
    expect(status.rows[0]).toEqual({ listener: 'from_sql', pending: '0', in_flight: '0', failed: '0', done: String(rows.rows.length) });
  });
});

describe('writers need no rights on superduper', () => {
  it('a role that may only insert into the table still inserts, and its rows are computed', async () => {
    await applyFromSql();
    // Roles belong to the whole cluster: a name of its own, so that a role left by
    // an earlier run that failed (holding grants in its database) is no obstacle.
    const role = `sd_writer_${randomUUID().slice(0, 8)}`;
    await database.sql.query(`CREATE ROLE ${role} LOGIN; GRANT INSERT, SELECT, UPDATE, DELETE ON posts TO ${role}`);
    const url = new URL(database.uri);
    url.username = role;
    const pg = await import('pg');
    const writer = new pg.default.Client({ connectionString: url.toString() });
    await writer.connect();
    try {
      await writer.query(`INSERT INTO posts VALUES (20, 'written by a plain role')`);
      await writer.query(`UPDATE posts SET body = 'updated by a plain role' WHERE id = 20`);
      await expect(writer.query('SELECT * FROM superduper._queue')).rejects.toThrow(/permission denied/);
    } finally {
      await writer.end();
    }
    await db.waitUntilIdle();
    const out = await database.sql.query(`SELECT output FROM superduper.out_from_sql WHERE id = 20`);
    expect(out.rows).toEqual([{ output: 'updated' }]);
    await database.sql.query(`REVOKE ALL ON posts FROM ${role}; DROP ROLE ${role}`);
  });
});
