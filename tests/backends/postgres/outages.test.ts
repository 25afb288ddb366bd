import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Superduper } from '../../../src/client.js';
import { createLogger } from '../../../src/logger.js';
import { createCluster, type TestCluster } from '../../helpers/cluster.js';
import { startCliSidecar, type CliSidecar } from '../../helpers/processes.js';
import { applyPoints, checkOutputs, retrying } from '../../helpers/points.js';

/**
 * The database's bad moments, on a server of this file's own: a sidecar
 * started with `superduper start <uri>` and default settings must come through
 * each by itself, with one log line when it loses the database and one when it
 * is back, and compute the rows written after.
 */
let cluster: TestCluster;
let db: Superduper;
let sidecar: CliSidecar;
let nextId = 1;

beforeAll(async () => {
  cluster = await createCluster('outages', { settings: { max_connections: 40 } });
  db = await connect(cluster.uri(), { logger: createLogger('silent') });
  await db.install();
  await applyPoints(db);
  // Debug lines say what each attempt to reconnect met.
  sidecar = await startCliSidecar(cluster.uri(), { args: ['--log-level', 'debug'] });
});

afterAll(async () => {
  sidecar?.child.kill('SIGKILL');
  await db?.close();
  await cluster?.destroy();
});

/** Inserts rows (retrying while the server is unreachable) and waits for their outputs. */
async function insertAndWait(count = 20): Promise<void> {
  const first = nextId;
  nextId += count;
  await retrying(() =>
    db.db.query(`INSERT INTO points SELECT g, g % 13, g % 7, g / 100.0 FROM generate_series($1::bigint, $2::bigint) g`, [first, first + count - 1]),
  );
  const { failed } = await db.waitFor('points_l', { timeoutMs: 30_000 }).catch((error: Error) => {
    throw new Error(`${error.message}\nsidecar output:\n${sidecar.output()}\nserver log:\n${readFileSync(cluster.logFile, 'utf8')}`);
  });
  expect(failed).toEqual([]);
  expect(await checkOutputs(db.db)).toEqual({ rows: nextId - 1, missing: 0, stale: 0, orphans: 0 });
}

/** The sidecar's log since line `from`: one line for the loss, one for the return, nothing worse. */
function expectOneOutage(from: number, reason: RegExp): void {
  const lines = sidecar.logs().slice(from);
  const lost = lines.filter((line) => line.msg === 'lost the connection to the database; reconnecting');
  const back = lines.filter((line) => /^reconnected to the database after/.test(line.msg));
  expect(lost, JSON.stringify(lines)).toHaveLength(1);
  expect(String(lost[0]!.error)).toMatch(reason);
  expect(back, JSON.stringify(lines)).toHaveLength(1);
  // Nothing at error level, no stack traces.
  expect(lines.filter((line) => line.level >= 50)).toEqual([]);
  expect(sidecar.output()).not.toMatch(/\n\s+at /);
  expect(sidecar.running()).toBe(true);
}

describe('superduper start, through the database server', () => {
  it('restart -m fast: stays up, reconnects, computes what was written after', async () => {
    await insertAndWait();
    const mark = sidecar.logs().length;
    await cluster.restart('fast');
    await insertAndWait();
    // Model calls from SQL are answered again too (the sidecar listens and serves requests anew).
    expect(await retrying(() => db.predict('linear', [1, 2, 3]))).toHaveLength(4);
    expectOneOutage(mark, /terminating connection due to administrator command|Connection terminated|ECONNREFUSED|starting up|shutting down/);
  });

  it('restart -m immediate', async () => {
    const mark = sidecar.logs().length;
    await cluster.restart('immediate');
    await insertAndWait();
    expectOneOutage(mark, /Connection terminated|ECONNREFUSED|crash|starting up|ECONNRESET|terminating connection/);
  });

  it('a crash of the server (kill -9 of the postmaster) and its crash recovery', async () => {
    const mark = sidecar.logs().length;
    await cluster.crash();
    await insertAndWait();
    expectOneOutage(mark, /Connection terminated|ECONNREFUSED|unexpected postmaster exit|starting up|ECONNRESET|recovery/);
  });

  it('a crash while rows stream in and their outputs are written (commits that do not wait for the disk): every row ends with its output', async () => {
    const mark = sidecar.logs().length;
    const writer = new pg.Client({ connectionString: cluster.uri() });
    writer.on('error', () => {});
    await writer.connect();
    const insert = (id: number, q: { query(text: string, values: unknown[]): Promise<unknown> }) =>
      q.query(`INSERT INTO points SELECT g, g % 13, g % 7, g / 100.0 FROM generate_series($1::bigint, $1::bigint) g ON CONFLICT DO NOTHING`, [id]);
    // One row every few milliseconds, each its own transaction, so that the
    // sidecar is claiming and writing (and the WAL writer behind) when the server dies.
    let streamed = 0;
    let inFlight: number | undefined;
    let crashed = false;
    const stream = (async () => {
      while (!crashed) {
        inFlight = nextId++;
        try {
          await insert(inFlight, writer);
        } catch {
          return; // the crash: this row may or may not have committed
        }
        inFlight = undefined;
        streamed++;
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
    })();
    while (streamed < 300) await new Promise((resolve) => setTimeout(resolve, 20));
    crashed = true;
    await cluster.crash();
    await stream;
    await writer.end().catch(() => {});
    // The row whose INSERT the crash cut off exists either way.
    if (inFlight !== undefined) await retrying(() => insert(inFlight!, db.db));
    await insertAndWait();
    expectOneOutage(mark, /Connection terminated|ECONNREFUSED|unexpected postmaster exit|starting up|ECONNRESET|recovery/);
  });

  it('the server refusing connections (too many clients) for a while', async () => {
    await insertAndWait();
    const mark = sidecar.logs().length;
    // Take every connection slot, then cut the sidecar's connections: its
    // attempts to connect again are refused with 53300 until slots free up.
    const hogs: pg.Client[] = [];
    const hog = async () => {
      const client = new pg.Client({ connectionString: cluster.uri() });
      client.on('error', () => {});
      await client.connect();
      hogs.push(client);
    };
    const sidecarConnections = async () =>
      (await hogs[0]!.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'superduper sidecar%'`)).rows[0].n as number;
    try {
      for (;;) {
        try {
          await hog();
        } catch (error) {
          expect((error as { code?: string }).code).toBe('53300');
          break;
        }
      }
      // The sidecar may take a freed slot before the test does (then it has
      // come through one outage, and is cut off again): until it has none.
      for (let round = 0; round < 200; round++) {
        if ((await sidecarConnections()) === 0) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          if ((await sidecarConnections()) === 0) break;
        }
        await hogs[0]!.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'superduper sidecar%'`);
        // Fill the slots just freed before the sidecar gets them.
        for (;;) {
          try {
            await hog();
          } catch {
            break;
          }
        }
      }
      expect(await sidecarConnections()).toBe(0);
      await hogs[0]!.query(`INSERT INTO points SELECT g, 1, 2, 3 FROM generate_series($1::bigint, $2::bigint) g`, [nextId, nextId + 9]);
      nextId += 10;
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(sidecar.running()).toBe(true);
    } finally {
      await Promise.all(hogs.splice(0).map((client) => client.end().catch(() => {})));
    }
    await insertAndWait();
    // Each time the test cut it off is an outage of its own, said once.
    const lines = sidecar.logs().slice(mark);
    const lost = lines.filter((line) => line.msg === 'lost the connection to the database; reconnecting');
    expect(lost.length).toBeGreaterThanOrEqual(1);
    expect(lines.filter((line) => /^reconnected to the database after/.test(line.msg))).toHaveLength(lost.length);
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    expect(sidecar.running()).toBe(true);
    // Its attempts were refused for real while the slots were taken.
    expect(lines.some((line) => line.level === 20 && /too many clients/.test(String(line.error)))).toBe(true);
  });
});
