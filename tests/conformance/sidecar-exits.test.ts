// A sidecar exits, with status 78 and a message saying why, when its database's
// layer is removed or upgraded past its code while it runs; an older layer it
// waits for. (What only a server has, a wrong password, a database dropped or a
// server restarted under it, is in tests/backends/postgres/sidecar-exits.test.ts.)
import { execFile } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';
import { applyPoints } from '../helpers/points.js';
import { startCliSidecar } from '../helpers/processes.js';

const opened: TestDatabase[] = [];
afterEach(async () => {
  for (const database of opened.splice(0)) await database.drop();
});

/** A database of its own, with the points listener. */
async function database(label: string): Promise<{ uri: string; db: Superduper }> {
  const database = await createTestDatabase(label);
  opened.push(database);
  const db = await connectTest(database);
  await applyPoints(db);
  return { uri: database.uri, db };
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', ...args], { timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('superduper start exits 78 for what no retry can fix, saying what', () => {
  it('the layer removed while it runs', async () => {
    const { uri, db } = await database('exits_removed');
    const sidecar = await startCliSidecar(uri);
    await db.db.query(`DROP SCHEMA superduper CASCADE`);
    await db.close();
    expect(await sidecar.exited).toBe(78);
    expect(sidecar.output()).toMatch(/the superduper layer is not installed in this database \(it was removed\?\)/);
  });

  it('the layer upgraded past its code while it runs; an older layer is waited for instead', async () => {
    const { uri, db } = await database('exits_newer');
    const sidecar = await startCliSidecar(uri);
    await db.db.query(`UPDATE superduper._meta SET value = '99.0.0' WHERE key = 'code_version'`);
    expect(await sidecar.exited).toBe(78);
    expect(sidecar.output()).toMatch(/the superduper layer in this database \(code 99\.0\.0, migration \d+\) is newer than this sidecar/);

    // Older: a sidecar of newer code waits for "superduper install", ready only after it.
    await db.db.query(`UPDATE superduper._meta SET value = '0.0.1' WHERE key = 'code_version'`);
    const waiting = await startCliSidecar(uri);
    const state = async () => (await db.db.query(`SELECT state FROM superduper.workers`)).rows.map((r) => r.state as string);
    await eventually(async () => (await state()).includes('waiting for install'), 10_000, 'the sidecar to wait for install');
    await db.db.query(`INSERT INTO points VALUES (1, 1, 2, 3)`);
    expect((await db.db.query(`SELECT count(*)::int AS n FROM superduper.out_points_l`)).rows[0]!.n).toBe(0);
    expect((await cli('install', uri)).code).toBe(0);
    expect((await db.waitFor('points_l', { timeoutMs: 20_000 })).failed).toEqual([]);
    expect(waiting.running()).toBe(true);
    waiting.child.kill('SIGTERM');
    expect(await waiting.exited).toBe(0);
    await db.close();
  });
});
