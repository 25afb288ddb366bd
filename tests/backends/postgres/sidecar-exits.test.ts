import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Superduper } from '../../../src/client.js';
import { createLogger } from '../../../src/logger.js';
import { createCluster, type TestCluster } from '../../helpers/cluster.js';
import { eventually } from '../../helpers/database.js';
import { startCliSidecar } from '../../helpers/processes.js';
import { applyPoints } from '../../helpers/points.js';

/**
 * A sidecar exits only for errors no retry can fix, with status 78 and a
 * message saying which; for everything else it waits and goes on. Its health
 * endpoint says which state it is in. Long-running commands of the CLI wait
 * through a restart.
 */
let cluster: TestCluster;
let admin: pg.Pool;

beforeAll(async () => {
  cluster = await createCluster('exits');
  // A role that logs in with a password (the cluster trusts everyone else).
  const hba = join(cluster.dataDir, 'pg_hba.conf');
  await writeFile(hba, `host all sd_password 127.0.0.1/32 scram-sha-256\n${await readFile(hba, 'utf8')}`);
  admin = new pg.Pool({ connectionString: cluster.uri(), max: 2 });
  admin.on('error', () => {});
  await admin.query(`SELECT pg_reload_conf()`);
  await admin.query(`CREATE ROLE sd_password LOGIN SUPERUSER PASSWORD 'right'; CREATE ROLE sd_nologin NOLOGIN`);
});

afterAll(async () => {
  await admin?.end();
  await cluster?.destroy();
});

/** A database of its own, installed, with the points listener. */
async function database(name: string): Promise<{ uri: string; db: Superduper }> {
  await admin.query(`CREATE DATABASE ${name}`);
  const uri = cluster.uri(name);
  const db = await connect(uri, { logger: createLogger('silent') });
  await db.install();
  await applyPoints(db);
  return { uri, db };
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', ...args], { timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const withUser = (uri: string, user: string, password?: string) => {
  const url = new URL(uri);
  url.username = user;
  if (password) url.password = password;
  return url.toString();
};

describe('superduper start exits 78 for what no retry can fix, saying what', () => {
  it('a wrong password, a role that may not log in, a database that does not exist, a layer not installed', async () => {
    const { uri, db } = await database('exits_login');
    await db.close();
    const wrong = await cli('start', withUser(uri, 'sd_password', 'wrong'));
    expect(wrong.code).toBe(78);
    expect(wrong.stderr).toMatch(/password authentication failed for user "sd_password"/);
    const nologin = await cli('start', withUser(uri, 'sd_nologin'));
    expect(nologin.code).toBe(78);
    expect(nologin.stderr).toMatch(/role "sd_nologin" is not permitted to log in/);
    const missing = await cli('start', cluster.uri('no_such_database'));
    expect(missing.code).toBe(78);
    expect(missing.stderr).toMatch(/database "no_such_database" does not exist/);
    await admin.query(`CREATE DATABASE exits_empty`);
    const empty = await cli('start', cluster.uri('exits_empty'));
    expect(empty).toMatchObject({ code: 78, stderr: expect.stringMatching(/superduper is not installed in this database\nhint: Run "npx superduper install <uri>" first/) });
    // The right password works (the check above was not a refusal of everything).
    const right = await startCliSidecar(withUser(uri, 'sd_password', 'right'));
    right.child.kill('SIGTERM');
    expect(await right.exited).toBe(0);
  });

  it('its database dropped while it runs', async () => {
    const { uri, db } = await database('exits_dropped');
    await db.close();
    const sidecar = await startCliSidecar(uri);
    await admin.query(`DROP DATABASE exits_dropped WITH (FORCE)`);
    expect(await sidecar.exited).toBe(78);
    expect(sidecar.output()).toMatch(/database "exits_dropped" does not exist/);
  });
});

describe('a sidecar started before its server', () => {
  it('waits for it, with one line, and then works', async () => {
    const { uri, db } = await database('exits_early');
    await db.close();
    await cluster.stop('fast');
    const child = spawn(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', 'start', uri, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let serverUp = false;
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    try {
      await eventually(async () => output.includes('cannot reach the database yet; retrying until it answers'), 15_000, 'the waiting line');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(child.exitCode).toBeNull();
      expect(output.match(/cannot reach the database yet/g)).toHaveLength(1);
      await cluster.start();
      serverUp = true;
      await eventually(async () => output.includes('"msg":"sidecar started"'), 20_000, 'the sidecar to start');
      const later = await connect(uri, { logger: createLogger('silent') });
      try {
        await later.db.query(`INSERT INTO points VALUES (1, 3, 2, 1)`);
        expect((await later.waitFor('points_l', { timeoutMs: 20_000 })).failed).toEqual([]);
        expect((await later.db.query(`SELECT count(*)::int AS n FROM superduper.out_points_l`)).rows[0]!.n).toBe(1);
      } finally {
        await later.close();
      }
    } finally {
      child.kill('SIGKILL');
      if (!serverUp) await cluster.start();
    }
  });
});

describe('health endpoint, and long-running commands through a restart', () => {
  it('/healthz stays 200 while it reconnects, /readyz is 503 until it is back', async () => {
    const { uri, db } = await database('exits_health');
    const sidecar = await startCliSidecar(uri, { args: ['--health-port', '0', '--log-level', 'info'] });
    const line = await eventually(async () => sidecar.logs().find((l) => l.msg === 'health endpoint: /healthz, /readyz'), 10_000, 'the health endpoint');
    const port = Number(line!.port);
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: response.status, body: (await response.json()) as { state: string } };
    };
    await eventually(async () => (await get('/readyz')).status === 200, 10_000, 'ready');
    await cluster.stop('fast');
    try {
      await eventually(async () => (await get('/readyz')).status === 503, 10_000, 'not ready while the server is down');
      expect(await get('/healthz')).toMatchObject({ status: 200, body: { state: 'reconnecting' } });
    } finally {
      await cluster.start();
    }
    await eventually(async () => (await get('/readyz')).status === 200, 15_000, 'ready again');
    expect((await get('/nothing').catch(() => ({ status: 404 }))).status).toBe(404);
    sidecar.child.kill('SIGTERM');
    expect(await sidecar.exited).toBe(0);
    await db.close();
  });

  it('superduper apply (showing progress) and superduper wait keep waiting through a restart', async () => {
    const { uri, db } = await database('exits_apply');
    await db.db.query(`INSERT INTO points SELECT g, g % 7, g % 3, g / 10.0 FROM generate_series(1, 20000) g`);
    const sidecar = await startCliSidecar(uri);
    const spec = join(cluster.dataDir, '..', 'spec.json');
    await writeFile(spec, JSON.stringify([{ type: 'listener', name: 'points_slow', model: 'linear', table: 'points', keys: ['a', 'b', 'c'], settings: { chunk_size: 100, batch_size: 100 } }]));
    const applying = cli('apply', spec, uri);
    const done = async () =>
      (await db.db.query(`SELECT count(*)::int AS n FROM superduper.out_points_slow`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0]!.n as number;
    await eventually(async () => (await done()) > 1000, 30_000, 'the backfill to be under way');
    // Paused (as by a long GC pause), so that work is left while the server restarts.
    sidecar.child.kill('SIGSTOP');
    const waiting = cli('wait', 'points_slow', uri, '--timeout', '60');
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the wait under way
    expect(await done()).toBeLessThan(20000);
    await cluster.restart('fast');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    sidecar.child.kill('SIGCONT');
    const [applied, waited] = await Promise.all([applying, waiting]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stderr).toMatch(/points_slow: 20000\/20000 rows, 0 in flight, 0 failed/);
    expect(waited, waited.stderr).toMatchObject({ code: 0, stdout: 'listener points_slow: every change made before the wait has its output\n' });
    expect(sidecar.running()).toBe(true);
    sidecar.child.kill('SIGTERM');
    await sidecar.exited;
    await db.close();
  });
});
