import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Superduper } from '../../../src/client.js';
import { createLogger } from '../../../src/logger.js';
import { createCluster, type TestCluster } from '../../helpers/cluster.js';
import { eventually } from '../../helpers/database.js';
import { startCliSidecar, type CliSidecar } from '../../helpers/processes.js';
import { applyPoints, checkOutputs, retrying } from '../../helpers/points.js';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';

/**
 * Everything at once: a writer inserts, updates, deletes and changes primary
 * keys without pause, while the server restarts and the network between the
 * sidecars and the server stalls; two sidecars (superduper start, default
 * settings) share the work through it all, and none is restarted by the test.
 * Afterwards every row's output is the one its current value gives, with none
 * missing, none left for a deleted row, and no output written twice for the
 * same value of a row.
 */
let cluster: TestCluster;
let proxy: TcpProxy;
let db: Superduper;
let writer: pg.Pool;
const sidecars: CliSidecar[] = [];

beforeAll(async () => {
  cluster = await createCluster('combined');
  proxy = await startTcpProxy({ host: '127.0.0.1', port: cluster.port });
  db = await connect(cluster.uri(), { logger: createLogger('silent') });
  await db.install();
  await applyPoints(db, 'points', 'points_l', { batch_size: 50, chunk_size: 200 });
  await db.db.query(`INSERT INTO points SELECT g, g % 17, g % 5, g / 50.0 FROM generate_series(1, 2000) g`);
  // Every write of an output: a (row, stamp) written twice is a value written twice.
  await db.db.query(`CREATE TABLE writes (id bigint, stamp bigint);
    CREATE FUNCTION record_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO public.writes VALUES (NEW.id, NEW._stamp); RETURN NULL; END $$;
    CREATE TRIGGER record_write AFTER INSERT OR UPDATE ON superduper.out_points_l FOR EACH ROW EXECUTE FUNCTION record_write()`);
  writer = new pg.Pool({ connectionString: cluster.uri(), max: 2 });
  writer.on('error', () => {});
  for (let i = 0; i < 2; i++) sidecars.push(await startCliSidecar(proxy.uri('postgres')));
});

afterAll(async () => {
  for (const sidecar of sidecars) sidecar.child.kill('SIGKILL');
  await writer?.end();
  await db?.close();
  await proxy?.close();
  await cluster?.destroy();
});

describe('a server restart and a network stall, under a steady stream of changes', () => {
  it('leaves every output current, none missing, none orphaned, none written twice', { timeout: 180_000 }, async () => {
    let stop = false;
    let operations = 0;
    let nextId = 100_000;
    const random = (n: number) => Math.floor(Math.random() * n);
    const write = async () => {
      while (!stop) {
        const id = 1 + random(2000);
        const kind = random(10);
        const statement =
          kind < 3
            ? { text: `INSERT INTO points VALUES ($1, $2, $3, $4)`, values: [nextId++, random(100), random(10), random(1000) / 10] }
            : kind < 7
              ? { text: `UPDATE points SET a = a + 1, c = $2 WHERE id = $1`, values: [id, random(1000) / 10] }
              : kind < 9
                ? { text: `DELETE FROM points WHERE id = $1`, values: [id] }
                : { text: `UPDATE points SET id = $2 WHERE id = $1`, values: [id, nextId++] };
        // A statement whose answer was lost may or may not have committed: the
        // check at the end compares with whatever the table holds.
        await retrying(() => writer.query(statement.text, statement.values)).catch(() => {});
        operations++;
      }
    };
    const writing = Promise.all([write(), write()]);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await cluster.restart('fast');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    // Sidecars' connections stall (the writer's, direct, do not).
    proxy.freeze();
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await proxy.resume();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    stop = true;
    await writing;
    expect(operations).toBeGreaterThan(200);

    const { failed } = await db.waitFor('points_l', { timeoutMs: 90_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\n${sidecars.map((s) => s.output()).join('\n---\n')}`);
    });
    expect(failed).toEqual([]);
    const check = await checkOutputs(db.db);
    expect(check).toMatchObject({ missing: 0, stale: 0, orphans: 0 });
    expect(check.rows).toBeGreaterThan(1000);
    const twice = await db.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT id, stamp FROM writes GROUP BY id, stamp HAVING count(*) > 1) d`);
    expect(twice.rows[0]!.n).toBe(0);
    for (const sidecar of sidecars) {
      expect(sidecar.running()).toBe(true);
      // Two outages, each said when it began and when it ended. A sidecar that
      // was idle through the stall notices it by its heartbeat, which waits up
      // to the 10 s default for an answer: it may not have said so yet.
      const said = (pattern: RegExp) => sidecar.logs().filter((line) => pattern.test(line.msg)).length;
      await eventually(
        async () => said(/^lost the connection to the database; reconnecting$/) >= 2 && said(/^reconnected to the database after/) >= 2,
        20_000,
        `both outages in the log of a sidecar:\n${sidecar.output()}`,
      );
      expect(sidecar.logs().filter((line) => line.level >= 50)).toEqual([]);
    }
    // Both answer again (neither was presumed dead and left so).
    const answering = async () =>
      (await db.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM superduper.workers WHERE state <> 'not answering'`)).rows[0]!.n;
    await eventually(async () => (await answering()) === 2, 20_000, 'both sidecars to answer');
  });
});
