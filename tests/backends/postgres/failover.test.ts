import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Superduper } from '../../../src/client.js';
import { createLogger } from '../../../src/logger.js';
import { createCluster, type TestCluster } from '../../helpers/cluster.js';
import { startCliSidecar, type CliSidecar } from '../../helpers/processes.js';
import { applyPoints, checkOutputs, retrying } from '../../helpers/points.js';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';

/**
 * A failover to a new primary at the same address, as a managed service or a
 * floating IP does it: the sidecar and the application reach the database
 * through a TCP proxy, which the test points at a promoted standby. Meanwhile
 * the address leads to a server in recovery: a hot standby (read-only: writes
 * fail with 25006) or a cold one (connections refused with 57P03).
 */
const clusters: TestCluster[] = [];
/** The server the address leads to: the first primary, then each promoted standby (whichever test ran before). */
let primary: TestCluster;
let proxy: TcpProxy;
let db: Superduper;
let sidecar: CliSidecar;
let nextId = 1;

beforeAll(async () => {
  primary = await createCluster('failover');
  clusters.push(primary);
  proxy = await startTcpProxy({ host: '127.0.0.1', port: primary.port });
  db = await connect(proxy.uri('postgres'), { logger: createLogger('silent') });
  await db.install();
  await applyPoints(db);
  sidecar = await startCliSidecar(proxy.uri('postgres'));
});

afterAll(async () => {
  sidecar?.child.kill('SIGKILL');
  await db?.close();
  await proxy?.close();
  for (const cluster of clusters) await cluster.destroy().catch(() => {});
});

async function insertAndWait(count = 20): Promise<void> {
  const first = nextId;
  nextId += count;
  await retrying(() =>
    db.db.query(`INSERT INTO points SELECT g, g % 11, g % 5, g / 10.0 FROM generate_series($1::bigint, $2::bigint) g`, [first, first + count - 1]),
  );
  const { failed } = await db.waitFor('points_l', { timeoutMs: 30_000 }).catch((error: Error) => {
    throw new Error(`${error.message}\nsidecar output:\n${sidecar.output()}`);
  });
  expect(failed).toEqual([]);
  expect(await checkOutputs(db.db)).toEqual({ rows: nextId - 1, missing: 0, stale: 0, orphans: 0 });
}

function expectOneOutage(from: number, reason: RegExp): void {
  const lines = sidecar.logs().slice(from);
  const lost = lines.filter((line) => line.msg === 'lost the connection to the database; reconnecting');
  const back = lines.filter((line) => /^reconnected to the database after/.test(line.msg));
  expect(lost, JSON.stringify(lines)).toHaveLength(1);
  expect(String(lost[0]!.error)).toMatch(reason);
  expect(back, JSON.stringify(lines)).toHaveLength(1);
  expect(lines.filter((line) => line.level >= 50)).toEqual([]);
  expect(sidecar.running()).toBe(true);
}

/** Stops the primary, points the address at the standby, and cuts what was connected to the old one. */
async function failOver(from: TestCluster, to: TestCluster): Promise<void> {
  // A fast stop sends the standby all of the primary's WAL first: nothing committed is lost.
  await from.stop('fast');
  proxy.target = { host: '127.0.0.1', port: to.port };
  proxy.drop();
  primary = to;
}

describe('a failover at the same address', () => {
  it('to a hot standby: read-only while in recovery, then promoted', async () => {
    const standby = await primary.createStandby({ hotStandby: true });
    clusters.push(standby);
    await insertAndWait();
    const mark = sidecar.logs().length;
    await failOver(primary, standby);
    // The sidecar reaches a server in recovery: it connects, and its writes fail.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(sidecar.running()).toBe(true);
    expect(readFileSync(standby.logFile, 'utf8')).toMatch(/read-only transaction|during recovery/);
    await standby.promote();
    await insertAndWait();
    expectOneOutage(mark, /terminating connection|Connection terminated|ECONNRESET|read-only|recovery/);
  });

  it('to a cold standby: connections refused (starting up, 57P03) until it is promoted', async () => {
    const current = primary;
    const standby = await current.createStandby({ hotStandby: false });
    clusters.push(standby);
    await insertAndWait();
    const mark = sidecar.logs().length;
    await failOver(current, standby);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(sidecar.running()).toBe(true);
    expect(readFileSync(standby.logFile, 'utf8')).toMatch(/not accepting connections|starting up/);
    await standby.promote();
    await insertAndWait();
    expectOneOutage(mark, /terminating connection|Connection terminated|ECONNRESET|not accepting connections|starting up/);
  });
});
