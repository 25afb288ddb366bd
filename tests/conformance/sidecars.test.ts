import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { LOCKS } from '../../src/generated/constants.js';
import { functionModel } from '../../src/models/function-runtime.js';
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

let racingId = 0;

/**
 * Table racing (200 rows, all kept) and listener racing_l on it (filter keep,
 * ranges of 50), computed by two sidecars of one lane each; `meanwhile` runs
 * once, inside the model, while the range holding row 50 computes. Returns when
 * the listener is caught up.
 */
async function raceBackfill(meanwhile: () => Promise<void>): Promise<void> {
  await database.sql.query(`CREATE TABLE racing (id int PRIMARY KEY, body text, keep boolean);
    INSERT INTO racing SELECT g, 'doc ' || g, true FROM generate_series(0, 199) g`);
  let raced = false;
  const racing = functionModel({
    name: 'racing',
    output: { type: 'vector', dim: 3 },
    predict: async (inputs: string[]) => {
      if (!raced && inputs.includes('doc 50')) {
        raced = true;
        await meanwhile();
      }
      return inputs.map(features);
    },
  });
  await db.apply(racing, listener({ name: 'racing_l', model: 'racing', table: 'racing', keys: ['body'], filter: 'keep', settings: { chunk_size: 50, batch_size: 10 } }));
  racingId = (await database.sql.query(`SELECT id FROM superduper._listeners WHERE name = 'racing_l'`)).rows[0].id;
  await Promise.all([db.start({ concurrency: 1, reconcileMs: 50 }), db.start({ concurrency: 1, reconcileMs: 50 })]);
  await db.waitFor('racing_l', { timeoutMs: 30_000 });
}

/** Rows 50..54 deleted, 55..59 moved out of the filter. */
async function removeRacingRows(): Promise<void> {
  await database.sql.query(`DELETE FROM racing WHERE id >= 50 AND id < 55`);
  await database.sql.query(`UPDATE racing SET keep = false WHERE id >= 55 AND id < 60`);
}

/** racing_l's changes not yet written: in the log (superduper._changes) or the queue. */
async function unhandledChanges(): Promise<number> {
  const result = await database.sql.query(
    `SELECT (SELECT count(*) FROM superduper._changes WHERE listener_id = $1)
          + (SELECT count(*) FROM superduper._queue WHERE listener_id = $1) AS n`,
    [racingId],
  );
  return Number(result.rows[0].n);
}

/** Queue entries made so far: the drain gives each a new id from superduper._change_id. */
async function queuedSoFar(): Promise<number> {
  const result = await database.sql.query(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM superduper._change_id`);
  return Number(result.rows[0].n);
}

/** Sessions of this database waiting for a lock of the kind (pg_locks.locktype), running a query like the pattern. */
async function waitingOnLocks(kind: string, query: string): Promise<number> {
  const result = await database.sql.query(
    `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid)
     WHERE NOT l.granted AND l.locktype = $1 AND a.datname = current_database() AND a.query LIKE $2`,
    [kind, query],
  );
  return result.rows[0].n;
}

/** Sessions waiting for racing_l's writes in flight to commit (its writes lock, exclusively). */
async function waitingForWrites(): Promise<number> {
  const result = await database.sql.query(
    `SELECT count(*)::int AS n FROM pg_locks
     WHERE NOT granted AND locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = $2 AND mode = 'ExclusiveLock'
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [LOCKS.writes_namespace, racingId],
  );
  return result.rows[0].n;
}

/** An output for every row kept, and none for the rows gone. */
async function expectNoOrphans(): Promise<void> {
  const kept = (await database.sql.query(`SELECT id FROM racing WHERE keep ORDER BY id`)).rows.map((r) => r.id);
  const outputs = (await database.sql.query(`SELECT id FROM superduper.out_racing_l ORDER BY id`)).rows.map((r) => r.id);
  expect(kept).toHaveLength(190);
  expect(outputs).toEqual(kept);
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

  it('rows deleted, or moved out of the filter, while their backfill range computes leave no output behind', async () => {
    let handledMeanwhile = false;
    // While the range holding 50..59 computes in one sidecar, those rows go, and
    // the other sidecar handles their changes before the range is written.
    await raceBackfill(async () => {
      const before = await queuedSoFar();
      await removeRacingRows();
      await eventually(async () => (await unhandledChanges()) === 0, 20_000, 'the changes handled by the other sidecar');
      // Their ten rows were queued (not skipped), and handled, while this range computed.
      expect((await queuedSoFar()) - before).toBeGreaterThanOrEqual(10);
      handledMeanwhile = true;
    });
    expect(handledMeanwhile, 'the other sidecar handled the changes while the range computed').toBe(true);
    await expectNoOrphans();
  });

  // The test holds the range's row, as the sidecar's own lease extension or a
  // commit waiting for a synchronous standby can, so that the write waits
  // between the statement that checked its rows were there and its commit.
  // The other sidecar's removal of their outputs cannot see the outputs not yet
  // committed: it waits for the write (superduper._await_writes) instead.
  it.runIf(backend.concurrentSessions)('rows gone while the write of their backfill range commits leave no output behind', async () => {
    let reachedMeanwhile = false;
    let race: Promise<void> | undefined;
    await raceBackfill(async () => {
      const holder = await database.sql.connect();
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM superduper._backfill WHERE listener_id = $1 AND lo = '["50"]' FOR UPDATE`, [racingId]);
      race = (async () => {
        try {
          await eventually(async () => (await waitingOnLocks('transactionid', '%\\_write"(%')) > 0, 20_000, 'the range write to wait for its row');
          await removeRacingRows();
          // The other sidecar handles the changes at once, or waits for the range's write to commit.
          await eventually(
            async () => (await unhandledChanges()) === 0 || (await waitingForWrites()) > 0,
            20_000,
            'the other sidecar to reach the changes',
          );
          reachedMeanwhile = true;
        } finally {
          await holder.query('COMMIT');
          holder.release();
        }
      })();
      race.catch(() => undefined); // awaited below, once the listener is caught up
    });
    await race;
    await db.waitFor('racing_l', { timeoutMs: 30_000 });
    expect(reachedMeanwhile, 'the other sidecar reached the changes while the range write was open').toBe(true);
    await expectNoOrphans();
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
