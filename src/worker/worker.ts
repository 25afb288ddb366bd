import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Database } from '../backends/database.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelCache } from '../models/registry.js';
import { runBatch } from './batch.js';
import { RequestServer } from './requests.js';
import { codeGone, type InFlight, type ListenerInfo } from './listener-info.js';

const VACUUM_LOG = 'VACUUM (SKIP_LOCKED) superduper._changes';

export interface WorkerOptions {
  logger: Logger;
  /**
   * How often to look for work even without a NOTIFY (lost while disconnected).
   * Default 2000 ms; 200 ms on the embedded database, where triggers cannot wake a sidecar.
   */
  reconcileMs?: number;
  /** How often to tell the database this sidecar is alive. Default 2000 ms. */
  heartbeatMs?: number;
  /** After how long without a heartbeat another sidecar's claims are released. Default 15000 ms. */
  deadAfterMs?: number;
  /** How long a graceful stop waits for the batch in flight. Default 30000 ms. */
  stopTimeoutMs?: number;
  /** Batches in flight at once (claim, compute and write overlap). Default 2. */
  concurrency?: number;
}

/**
 * The sidecar loop. Stateless: its identity and claims live in the database, so
 * any number of these, on any machines, share the work.
 *
 * While there is work it claims batches round-robin across listeners. When there
 * is none it takes the sleep lock (superduper._sleep_lock), looks once more, and
 * waits for a NOTIFY or the reconciliation timer.
 */
export class Worker {
  readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #db: Database;
  readonly #models: ModelCache;
  readonly #log: Logger;
  readonly #options: Required<Omit<WorkerOptions, 'logger'>>;

  #listeners = new Map<number, ListenerInfo>();
  readonly #hot = new Set<number>();
  #refreshNeeded = true;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wakeUp: (() => void) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #maintenance: NodeJS.Timeout | undefined;
  #batchesAtLastVacuum = -1;
  #refreshes = 0;
  #unlisten: (() => Promise<void>) | undefined;
  readonly #inFlight = new Set<InFlight>();
  /** Answers model calls from SQL sessions; none on the embedded database (its host answers them). */
  readonly #requests: RequestServer | undefined;
  /** The embedded database: one session for everyone, so never hold it to sleep. */
  readonly #sharedSession: boolean;
  #lastPromoteCheck = 0;
  #markStopped: () => void = () => {};
  readonly #stopped = new Promise<void>((resolve) => {
    this.#markStopped = resolve;
  });
  #batches = 0;

  constructor(db: Database, models: ModelCache, options: WorkerOptions) {
    this.#db = db;
    this.#models = models;
    this.#options = {
      reconcileMs: options.reconcileMs ?? (db.kind === 'pglite' ? 200 : 2000),
      heartbeatMs: options.heartbeatMs ?? 2000,
      deadAfterMs: options.deadAfterMs ?? 15000,
      stopTimeoutMs: options.stopTimeoutMs ?? 30000,
      concurrency: Math.max(1, options.concurrency ?? 2),
    };
    this.#log = options.logger.child({ worker: this.id });
    this.#sharedSession = db.kind === 'pglite';
    this.#requests = this.#sharedSession ? undefined : new RequestServer(db, models, this.id, this.#log);
  }

  /** Number of batches this worker has written (for tests and progress). */
  get batches(): number {
    return this.#batches;
  }

  /** Re-reads the listeners now (after an apply in this process, say). */
  refresh(): void {
    this.#refreshNeeded = true;
    this.#wakeUp?.();
  }

  async start(): Promise<void> {
    await this.#register();
    this.#unlisten = await this.#db.listen(
      'superduper',
      (payload) => this.#notified(payload),
      () => {
        // Notifications sent while we were disconnected are lost: look again.
        this.#refreshNeeded = true;
        this.#wakeUp?.();
      },
    );
    this.#heartbeat = setInterval(() => void this.#beat(), this.#options.heartbeatMs);
    this.#heartbeat.unref();
    this.#maintenance = setInterval(() => void this.#vacuumLog(), 1000);
    this.#maintenance.unref();
    this.#loop = this.#run();
    this.#requests?.wake();
    this.#log.info({ functions: this.#models.functions.names() }, 'sidecar started');
  }

  /**
   * Graceful stop: the batch in flight is finished (or, after stopTimeoutMs,
   * handed back), anything else claimed is released, and the registration goes.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return this.#loop;
    this.#stopping = true;
    this.#markStopped();
    this.#wakeUp?.();
    clearInterval(this.#heartbeat);
    clearInterval(this.#maintenance);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#options.stopTimeoutMs);
    });
    await Promise.race([Promise.all([this.#loop?.catch(() => {}), this.#requests?.idle()]), timedOut]);
    clearTimeout(timer);
    await this.#unlisten?.().catch(() => {});
    this.#requests?.release();
    await this.#db.query('SELECT superduper._worker_stop($1)', [this.id]).catch((error: unknown) => {
      this.#log.warn({ error: describeError(error) }, 'could not release claims on stop');
    });
    this.#log.info({ batches: this.#batches }, 'sidecar stopped');
  }

  async #register(): Promise<void> {
    await this.#db.query('SELECT superduper._worker_register($1, $2, $3, $4)', [
      this.id,
      hostname(),
      process.pid,
      this.#models.functions.names(),
    ]);
  }

  #notified(payload: string): void {
    if (payload.startsWith('embed:')) {
      if (this.#requests) this.#requests.takeCarried(payload.slice('embed:'.length));
      return;
    }
    if (payload.startsWith('request')) {
      const id = payload.slice('request:'.length);
      if (/^\d+$/.test(id)) this.#requests?.take(id);
      else this.#requests?.wake();
      return;
    }
    const id = Number(payload);
    if (this.#listeners.has(id)) this.#hot.add(id);
    else this.#refreshNeeded = true;
    this.#wakeUp?.();
  }

  async #beat(): Promise<void> {
    try {
      const released = await this.#db.query<{ released: number }>(
        'SELECT superduper._worker_heartbeat($1, make_interval(secs => $2)) AS released',
        [this.id, this.#options.deadAfterMs / 1000],
      );
      const count = released.rows[0]?.released ?? 0;
      if (count > 0) {
        this.#log.warn({ sidecars: count }, 'released the claims of sidecars that stopped answering');
        this.#refreshNeeded = true;
        this.#wakeUp?.();
      }
      for (const flight of this.#inFlight) {
        if (Date.now() - flight.claimedAt <= (flight.listener.settings.lease_seconds * 1000) / 3) continue;
        await this.#db.query('SELECT superduper._extend_lease($1, $2, $3::text[], $4::bigint[], $5, make_interval(secs => $6))', [
          this.id,
          flight.listener.id,
          flight.ackPks,
          flight.ackIds,
          flight.chunk,
          flight.listener.settings.lease_seconds,
        ]);
        flight.claimedAt = Date.now();
      }
    } catch (error) {
      if (/is not registered/.test(describeError(error))) {
        // Presumed dead by another sidecar (a long pause); our claims were released.
        await this.#register().catch(() => {});
      } else {
        this.#log.warn({ error: describeError(error) }, 'heartbeat failed');
      }
    }
  }

  /**
   * Drains delete from the change log, which has no index: its dead rows are
   * read by every drain until a VACUUM removes them, and autovacuum comes by
   * once a minute. Measured: under a steady write load the dead rows made each
   * drain slow enough to cut the database's throughput tenfold. So a sidecar
   * that worked in the last second vacuums the log (skipped if another sidecar is
   * at it; a warning, not an error, if this role does not own the table).
   */
  async #vacuumLog(): Promise<void> {
    const activity = this.#batches + this.#refreshes;
    if (activity === this.#batchesAtLastVacuum || this.#stopping) return;
    this.#batchesAtLastVacuum = activity;
    await this.#db.query(VACUUM_LOG).catch((error: unknown) => {
      this.#log.debug({ error: describeError(error) }, 'could not vacuum the change log');
    });
  }

  async #refresh(): Promise<void> {
    this.#refreshes++;
    this.#requests?.wake();
    const result = await this.#db.query<ListenerInfo>('SELECT * FROM superduper._worker_listeners($1)', [
      this.#models.functions.names(),
    ]);
    this.#listeners = new Map(result.rows.map((row) => [row.id, row]));
    for (const id of [...this.#hot]) if (!this.#listeners.has(id)) this.#hot.delete(id);
    for (const row of result.rows) if (row.has_work) this.#hot.add(row.id);
    this.#refreshNeeded = false;
    if (Date.now() - this.#lastPromoteCheck > this.#options.reconcileMs) {
      this.#lastPromoteCheck = Date.now();
      await this.#promote();
    }
  }

  /** Building versions whose backfill is complete replace their current version. */
  async #promote(): Promise<void> {
    const result = await this.#db.query<{ promoted: number }>('SELECT superduper._promote_ready() AS promoted');
    if ((result.rows[0]?.promoted ?? 0) > 0) {
      this.#log.info('promoted rebuilt listener versions');
      this.#refreshNeeded = true;
    }
  }

  async #run(): Promise<void> {
    let idleWait = 10;
    let failures = 0;
    while (!this.#stopping) {
      try {
        if (this.#refreshNeeded) await this.#refresh();
        failures = 0;
        if (this.#hot.size > 0) {
          await this.#workHotListeners();
          idleWait = 10;
          continue;
        }
        if (this.#sharedSession) {
          // The embedded database's triggers cannot wake a sidecar (its writers and
          // the sidecar share one session, so the sleep lock never blocks them):
          // look again after reconcileMs, or when the wire server sees a write.
          await this.#sleep(this.#options.reconcileMs);
          this.#refreshNeeded = true;
          continue;
        }
        // Nothing known to do: sleep. See superduper._sleep_lock for why taking the
        // lock, then looking once more, cannot miss a change.
        idleWait = await this.#db.withConnection(async (connection) => {
          const locked = await connection.query<{ locked: boolean }>('SELECT superduper._sleep_lock($1) AS locked', [this.id]);
          try {
            await this.#refresh();
            if (this.#hot.size > 0 || this.#stopping) return 10;
            // Without the lock, writers may not notify: wait briefly, and longer
            // while that lasts.
            await this.#sleep(locked.rows[0]?.locked ? this.#options.reconcileMs : idleWait);
            if (this.#hot.size === 0) this.#refreshNeeded = true;
            return Math.min(idleWait * 2, this.#options.reconcileMs);
          } finally {
            await connection.query('SELECT superduper._sleep_unlock($1)', [this.id]);
          }
        });
      } catch (error) {
        if (this.#stopping) break;
        // Back off while the database stays unreachable (or the error persists):
        // 250 ms, doubling, at most 10 s.
        failures++;
        const wait = Math.min(250 * 2 ** (failures - 1), 10_000);
        this.#log.error({ error: describeError(error), retryInMs: wait }, 'sidecar loop error; retrying');
        this.#refreshNeeded = true;
        // Only a stop ends this wait early: notifications keep coming while the
        // error lasts, and must not turn the backoff into a busy loop.
        await Promise.race([new Promise((resolve) => setTimeout(resolve, wait).unref()), this.#stopped]);
      }
    }
  }

  /**
   * Runs batches of the listeners known to have work, round-robin, in
   * `concurrency` lanes: while one lane's model computes, another's claim or
   * write is in the database, so neither waits for the other.
   */
  async #workHotListeners(): Promise<void> {
    let turn = 0;
    const next = (): ListenerInfo | undefined => {
      const ids = [...this.#hot];
      if (ids.length === 0) return undefined;
      const id = ids[turn++ % ids.length]!;
      return this.#listeners.get(id);
    };
    const lane = async () => {
      while (!this.#stopping && this.#hot.size > 0) {
        const listener = next();
        if (!listener) return;
        try {
          const outcome = await runBatch(
            {
              db: this.#db,
              models: this.#models,
              workerId: this.id,
              logger: this.#log,
              onClaim: (claim, done) => (done ? this.#inFlight.delete(claim) : this.#inFlight.add(claim)),
            },
            listener,
          );
          if (outcome.claimed === 0) {
            this.#hot.delete(listener.id);
            if (listener.state === 'building') await this.#promote();
          } else {
            this.#batches++;
            this.#log.debug({ listener: listener.name, ...outcome }, 'batch');
          }
        } catch (error) {
          this.#hot.delete(listener.id);
          if (codeGone(error)) {
            // Its functions are gone or replaced: removed, frozen or promoted meanwhile.
            this.#refreshNeeded = true;
            continue;
          }
          throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: this.#options.concurrency }, lane));
  }

  /**
   * Waits ms, or until woken (a NOTIFY, a stop). Returns at once if work is
   * already known: a NOTIFY may have arrived between the last look and now.
   */
  #sleep(ms: number): Promise<void> {
    if (this.#stopping || this.#hot.size > 0 || this.#refreshNeeded) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeUp = () => {
        this.#wakeUp = undefined;
        done();
      };
    });
  }
}
