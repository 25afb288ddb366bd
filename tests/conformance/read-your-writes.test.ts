import { execFile } from 'node:child_process';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * superduper.wait_for(): someone who just wrote rows waits, without sleeping
 * and polling, until their outputs exist. On the embedded database the SQL goes
 * through its wire endpoint, whose host runs the wait (SDW01) while the sidecar
 * in this process computes.
 */
let database: TestDatabase;
let db: Superduper;

const length = functionModel({
  name: 'slow_len',
  output: { type: 'float' },
  version: 'slow-len-1',
  predict: async (texts: string[]) => {
    // Slow enough that outputs are not there yet when a write returns.
    await new Promise((resolve) => setTimeout(resolve, 20));
    return texts.map((text) => {
      if (text.includes('poison')) throw new Error(`cannot measure "${text}"`);
      return text.length;
    });
  },
});
const double = functionModel({ name: 'double', output: { type: 'float' }, predict: (xs: number[]) => xs.map((x) => x * 2) });

// A database per test: each counts every row of docs and its outputs.
beforeEach(async () => {
  database = await createTestDatabase('read_your_writes');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL)`);
  await db.apply(
    length,
    double,
    listener({ name: 'docs_len', model: 'slow_len', table: 'docs', keys: ['body'], settings: { batch_size: 10, max_attempts: 2, backoff_seconds: 0.1 } }),
    listener({ name: 'double_len', model: 'double', schema: 'superduper', table: 'out_docs_len', keys: ['output'] }),
  );
  await db.start({ reconcileMs: 100 });
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

const waitFor = async (listenerName: string | null, timeout = '20 seconds') =>
  (await database.sql.query(`SELECT listener, primary_key, error FROM superduper.wait_for($1, $2::interval)`, [listenerName, timeout])).rows;

const current = async () =>
  (
    await database.sql.query(
      `SELECT count(*)::int AS rows, count(o.id)::int AS outputs, count(*) FILTER (WHERE o.output = length(d.body))::int AS current
       FROM docs d LEFT JOIN superduper.out_docs_len o USING (id)`,
    )
  ).rows[0];

/** 60 rows inserted, 10 of them updated and 5 deleted, in separate commits. */
async function writeDocs(): Promise<void> {
  await database.sql.query(`INSERT INTO docs SELECT g, repeat('a', g) FROM generate_series(1, 60) g`);
  await database.sql.query(`UPDATE docs SET body = body || 'bb' WHERE id <= 10`);
  await database.sql.query(`DELETE FROM docs WHERE id BETWEEN 51 AND 55`);
}

describe('superduper.wait_for', () => {
  it('returns at once, with no failures, when nothing is pending', async () => {
    expect(await waitFor('docs_len')).toEqual([]);
    expect(await waitFor(null)).toEqual([]);
  });

  it('returns once every committed change has its output, from the current value', async () => {
    await writeDocs();
    expect(await waitFor('docs_len')).toEqual([]);
    expect(await current()).toEqual({ rows: 55, outputs: 55, current: 55 });
    const orphans = await database.sql.query(`SELECT count(*)::int AS n FROM superduper.out_docs_len WHERE id BETWEEN 51 AND 55`);
    expect(orphans.rows[0].n).toBe(0);
  });

  it('waits through a chain: the listener on the outputs is current too', async () => {
    await writeDocs();
    await waitFor('double_len');
    await database.sql.query(`UPDATE docs SET body = body || 'c' WHERE id > 40`);
    expect(await waitFor('double_len')).toEqual([]);
    const wrong = await database.sql.query(
      `SELECT count(*)::int AS n FROM docs d LEFT JOIN superduper.out_double_len o USING (id) WHERE o.output IS DISTINCT FROM 2 * length(d.body)`,
    );
    expect(wrong.rows[0].n).toBe(0);
  });

  it('covers the changes committed before the call, not those after: it returns while a writer goes on', async () => {
    let stop = false;
    let id = 1000;
    const writing = (async () => {
      while (!stop) await database.sql.query(`INSERT INTO docs VALUES ($1, 'still writing')`, [id++]);
    })();
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = id - 1;
      expect(await waitFor('docs_len', '30 seconds')).toEqual([]);
      const missing = await database.sql.query(
        `SELECT count(*)::int AS n FROM docs d LEFT JOIN superduper.out_docs_len o USING (id) WHERE d.id <= $1 AND o.output IS NULL`,
        [before],
      );
      expect(missing.rows[0].n).toBe(0);
    } finally {
      stop = true;
      await writing;
    }
  });

  it('lists the rows that failed for good (after their retries), with their error', async () => {
    await database.sql.query(`INSERT INTO docs VALUES (2001, 'poison pill'), (2002, 'fine')`);
    const failed = await waitFor('docs_len');
    expect(failed).toEqual([{ listener: 'docs_len', primary_key: ['2001'], error: expect.stringMatching(/cannot measure "poison pill"/) }]);
    // The TypeScript API says the same.
    const viaApi = await db.waitFor('docs_len');
    expect(viaApi.failed).toMatchObject([{ listener: 'docs_len', primary_key: ['2001'] }]);
    // A fixed row is no longer a failure.
    await database.sql.query(`UPDATE docs SET body = 'cured' WHERE id = 2001`);
    expect(await waitFor('docs_len')).toEqual([]);
  });

  it('times out with SDT01, saying what is left and what the sidecars are doing', async () => {
    await writeDocs(); // for the backfill that no sidecar here can compute
    // A function model only another process could run: nothing computes it here.
    const other = await connectTest(database);
    try {
      await other.apply(
        functionModel({ name: 'elsewhere', output: { type: 'float' }, predict: (xs: string[]) => xs.map(() => 1) }),
        listener({ name: 'docs_elsewhere', model: 'elsewhere', table: 'docs', keys: ['body'] }),
      );
    } finally {
      await other.close();
    }
    const error = await waitFor('docs_elsewhere', '300 milliseconds').catch((e: unknown) => e as pg.DatabaseError);
    expect(error).toMatchObject({ code: 'SDT01' });
    expect((error as pg.DatabaseError).message).toMatch(/timed out after 00:00:00\.3: listener "docs_elsewhere" has \d+ existing row\(s\) of its backfill/);
    expect((error as pg.DatabaseError).hint).toMatch(/sidecar/);
    await expect(db.waitFor('docs_elsewhere', { timeoutMs: 200 })).rejects.toMatchObject({ code: 'SDT01' });
    await db.remove('docs_elsewhere');
  });

  it('refuses what cannot work: an unknown listener, REPEATABLE READ, its own uncommitted changes', async () => {
    await expect(waitFor('nope')).rejects.toThrow(/no listener named 'nope'/);
    const client = await database.sql.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await expect(client.query(`SELECT * FROM superduper.wait_for('docs_len')`)).rejects.toThrow(/cannot wait in a REPEATABLE READ transaction/);
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await client.query(`INSERT INTO docs VALUES (3001, 'not yet committed')`);
      await expect(client.query(`SELECT * FROM superduper.wait_for('docs_len')`)).rejects.toThrow(/has not committed/);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('a role that may not read the table may not wait on it (it returns row keys)', async () => {
    const role = `sd_wait_${database.name.slice(-8)}`;
    await database.sql.query(`CREATE ROLE ${role} LOGIN; GRANT USAGE ON SCHEMA superduper TO ${role}`);
    try {
      const url = new URL(database.uri);
      url.username = role;
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        await expect(client.query(`SELECT * FROM superduper.wait_for('docs_len')`)).rejects.toThrow(/permission denied for table public.docs \(listener "docs_len"\)/);
        await database.sql.query(`GRANT SELECT ON docs TO ${role}`);
        expect((await client.query(`SELECT * FROM superduper.wait_for('docs_len')`)).rows).toEqual([]);
      } finally {
        await client.end();
      }
    } finally {
      await database.sql.query(`REVOKE ALL ON docs FROM ${role}; REVOKE ALL ON SCHEMA superduper FROM ${role}; DROP ROLE ${role}`);
    }
  });

  it('superduper wait: exit 0 when every output is current, 1 naming the rows that failed', async () => {
    const cli = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', ...args], (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
        );
      });
    await database.sql.query(`INSERT INTO docs VALUES (4001, 'counted')`);
    const ok = await cli('wait', 'docs_len', database.uri);
    expect(ok).toMatchObject({ code: 0, stdout: 'listener docs_len: every change made before the wait has its output\n' });
    await database.sql.query(`INSERT INTO docs VALUES (4002, 'poison again')`);
    const bad = await cli('wait', database.uri, '--timeout', '20');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/docs_len\s+4002\s+\S+\s+.*cannot measure "poison again"/);
    expect(bad.stderr).toMatch(/every listener: 1 row\(s\) failed for good/);
    await database.sql.query(`DELETE FROM docs WHERE id = 4002`);
  });
});
