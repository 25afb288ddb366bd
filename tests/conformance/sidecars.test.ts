import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { testBackendCapabilities } from '../helpers/backends.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';
import { countingFeatureModel, features } from '../helpers/models.js';
import { startSidecarProcess } from '../helpers/processes.js';

const backend = testBackendCapabilities();
let database: TestDatabase;
let db: Superduper;
const model = countingFeatureModel();

// A database per test: each counts the work, the workers and the claims of its
// own sidecars, which another test's backlog or leftover claims would change.
beforeEach(async () => {
  database = await createTestDatabase('sidecars');
  db = await connectTest(database);
  await db.apply(model);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

async function outputCount(listenerName: string): Promise<number> {
  const result = await database.sql.query(`SELECT count(*)::int AS n FROM superduper."out_${listenerName}"`);
  return result.rows[0].n;
}

describe('without a sidecar', () => {
  it('writes succeed and the queue grows', async () => {
    await database.sql.query(`CREATE TABLE idle (id serial PRIMARY KEY, body text)`);
    await db.apply(listener({ name: 'idle_l', model: 'features', table: 'idle', keys: ['body'] }));
    await database.sql.query(`INSERT INTO idle (body) SELECT 'row ' || g FROM generate_series(1, 1000) g`);
    for (let i = 0; i < 50; i++) await database.sql.query(`INSERT INTO idle (body) VALUES ($1)`, [`single ${i}`]);
    const status = (await db.status()).find((s) => s.listener === 'idle_l');
    expect(status).toMatchObject({ pending: 1050, in_flight: 0, done: 0 });
    expect(status!.lag_seconds).toBeGreaterThan(0);
  });
});

describe('several sidecars', () => {
  it('share a backfill without computing any row twice', async () => {
    await database.sql.query(`CREATE TABLE shared (id int PRIMARY KEY, body text);
      INSERT INTO shared SELECT g, 'shared row ' || g FROM generate_series(1, 6000) g`);
    model.calls.clear();
    await db.apply(listener({ name: 'shared_l', model: 'features', table: 'shared', keys: ['body'], settings: { chunk_size: 100, batch_size: 50 } }));
    const workers = await Promise.all([db.start(), db.start(), db.start()]);
    await db.waitUntilIdle({ listeners: ['shared_l'], timeoutMs: 60_000 });
    expect(await outputCount('shared_l')).toBe(6000);
    const shared = [...model.calls.entries()].filter(([text]) => text.startsWith('shared row'));
    expect(shared).toHaveLength(6000);
    expect(shared.every(([, calls]) => calls === 1)).toBe(true);
    // All three took part.
    expect(workers.every((w) => w.batches > 0)).toBe(true);
    await Promise.all(workers.map((w) => w.stop()));
  });
});

describe('claims of sidecars that died', () => {
  it('an expired lease is claimed again', async () => {
    await database.sql.query(`CREATE TABLE leased (id int PRIMARY KEY, body text)`);
    await db.apply(listener({ name: 'leased_l', model: 'features', table: 'leased', keys: ['body'] }));
    await database.sql.query(`INSERT INTO leased SELECT g, 'leased ' || g FROM generate_series(1, 30) g`);
    const id = (await database.sql.query(`SELECT id FROM superduper._listeners WHERE name = 'leased_l'`)).rows[0].id;
    // A sidecar that claims everything and is never heard of again.
    const claimed = await database.sql.query(`SELECT * FROM superduper."_l${id}_claim"('ghost', 100, interval '1 second')`);
    expect(claimed.rows).toHaveLength(30);
    const worker = await db.start({ reconcileMs: 100 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await outputCount('leased_l')).toBe(0); // still leased
    await eventually(async () => (await outputCount('leased_l')) === 30, 10_000, 'the expired lease to be reclaimed');
    await worker.stop();
  });

  it('a sidecar not seen for deadAfterMs has its claims released at once', async () => {
    await database.sql.query(`CREATE TABLE stale (id int PRIMARY KEY, body text)`);
    await db.apply(listener({ name: 'stale_l', model: 'features', table: 'stale', keys: ['body'] }));
    await database.sql.query(`INSERT INTO stale SELECT g, 'stale ' || g FROM generate_series(1, 10) g`);
    const id = (await database.sql.query(`SELECT id FROM superduper._listeners WHERE name = 'stale_l'`)).rows[0].id;
    await database.sql.query(`INSERT INTO superduper._workers (id, hostname, pid, seen_at) VALUES ('dead', 'h', 1, now() - interval '1 hour')`);
    await database.sql.query(`SELECT * FROM superduper."_l${id}_claim"('dead', 100, interval '1 hour')`);
    const worker = await db.start({ reconcileMs: 100, heartbeatMs: 100, deadAfterMs: 1000 });
    await eventually(async () => (await outputCount('stale_l')) === 10, 10_000, 'the dead sidecar\'s claims to be released');
    const dead = await database.sql.query(`SELECT count(*)::int AS n FROM superduper._workers WHERE id = 'dead'`);
    expect(dead.rows[0].n).toBe(0);
    await worker.stop();
  });
});

/** Table quiet and its listener quiet_l, for the waking tests. */
async function quietListener(): Promise<void> {
  await database.sql.query(`CREATE TABLE quiet (id int PRIMARY KEY, body text)`);
  await db.apply(listener({ name: 'quiet_l', model: 'features', table: 'quiet', keys: ['body'] }));
}

// Both wait for the sidecar to sleep on NOTIFY, then write.
describe.runIf(backend.sidecarSleepsOnNotify)('waking', () => {
  it('work whose NOTIFY never came is found by the reconciliation scan', async () => {
    await quietListener();
    const worker = await db.start({ reconcileMs: 300 });
    await eventually(async () => (await database.sql.query(`SELECT bool_and(sleeping) AS s FROM superduper._workers`)).rows[0].s);
    // A change logged without a NOTIFY (as if the notification were lost).
    await database.sql.query(`ALTER TABLE quiet DISABLE TRIGGER USER`);
    await database.sql.query(`INSERT INTO quiet VALUES (1, 'unannounced')`);
    await database.sql.query(`ALTER TABLE quiet ENABLE TRIGGER USER`);
    await database.sql.query(
      `INSERT INTO superduper._changes (listener_id, pk) SELECT id, '["1"]' FROM superduper._listeners WHERE name = 'quiet_l'`,
    );
    await eventually(async () => (await outputCount('quiet_l')) === 1, 5_000, 'the reconciliation scan');
    await worker.stop();
  });

  it.runIf(backend.terminateSessions)('after its LISTEN connection is cut, the sidecar reconnects and catches up', async () => {
    await quietListener();
    await database.sql.query(`INSERT INTO quiet VALUES (1, 'written before the sidecar started')`);
    const worker = await db.start({ reconcileMs: 60_000 });
    await eventually(async () => (await database.sql.query(`SELECT bool_and(sleeping) AS s FROM superduper._workers`)).rows[0].s);
    await database.sql.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'superduper sidecar listener'`,
    );
    await database.sql.query(`INSERT INTO quiet VALUES (2, 'while cut off')`);
    await eventually(async () => (await outputCount('quiet_l')) === 2, 15_000, 'the reconnect to catch up');
    const row = await database.sql.query(`SELECT output::text FROM superduper.out_quiet_l WHERE id = 2`);
    expect(JSON.parse(row.rows[0].output)).toEqual(features('while cut off'));
    await worker.stop();
  });
});

describe('SIGTERM', () => {
  it('finishes the batch in flight, hands back nothing half-done, and exits 0', async () => {
    await database.sql.query(`CREATE TABLE slow_t (id int PRIMARY KEY, body text);
      INSERT INTO slow_t SELECT g, 'slow ' || g FROM generate_series(1, 200) g`);
    const sidecar = await startSidecarProcess(database.uri, { slowModelMs: 300 });
    await db.apply(listener({ name: 'slow_l', model: 'slow', table: 'slow_t', keys: ['body'], settings: { batch_size: 10, chunk_size: 10 } }));
    await eventually(async () => (await outputCount('slow_l')) >= 20, 20_000, 'some outputs');
    sidecar.child.kill('SIGTERM');
    const code = await sidecar.exited;
    expect(code).toBe(0);
    expect(sidecar.output()).toContain('stopped');
    const held = await database.sql.query(
      `SELECT (SELECT count(*) FROM superduper._queue WHERE leased_by = $1) + (SELECT count(*) FROM superduper._backfill WHERE leased_by = $1) AS n`,
      [sidecar.id],
    );
    expect(Number(held.rows[0].n)).toBe(0);
    const registered = await database.sql.query(`SELECT count(*)::int AS n FROM superduper._workers WHERE id = $1`, [sidecar.id]);
    expect(registered.rows[0].n).toBe(0);
    const done = await outputCount('slow_l');
    expect(done % 10).toBe(0); // whole batches only
    expect(done).toBeLessThan(200);

    const second = await startSidecarProcess(database.uri, { slowModelMs: 1 });
    await eventually(async () => (await outputCount('slow_l')) === 200, 30_000, 'the second sidecar to finish');
    const wrong = await database.sql.query(`SELECT count(*)::int AS n FROM slow_t s JOIN superduper.out_slow_l o USING (id) WHERE o.output <> upper(s.body)`);
    expect(wrong.rows[0].n).toBe(0);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
