import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { backoffMs } from '../backends/connection-health.js';
import type { Database } from '../backends/postgres/sql-driver.js';
import { classifyDatabaseError, describeError, SuperduperError } from '../errors.js';
import { codeVersion } from '../generated/sql.js';
import { compareLayer, describeCode, describeLayer, type LayerVersion } from '../layer-version.js';
import type { Logger } from '../logger.js';
import type { ModelCache } from '../models/registry.js';
import { runBatch } from './batch.js';
import { codeGone, type InFlight, type ListenerInfo } from './listener-info.js';
import { fatalError } from './fatal.js';
import { RequestServer } from './requests.js';

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
  /**
   * A heartbeat not answered within this long means the database (or the network
   * to it) stalled: every connection is closed and made again. Default 10000 ms.
   */
  stallTimeoutMs?: number;
  /** The longest wait between attempts to reach the database during an outage. Default 1000 ms. */
  reconnectMaxMs?: number;
}

/**
 * What a sidecar is doing: 'starting' (not yet through its first look for
 * work), 'working', 'idle' (waiting for changes), 'reconnecting' (the database
 * is unreachable: it retries by itself), 'waiting for install' (the database's
 * layer is older than this code), 'stopped', or 'failed' (an error no retry can
 * fix ended it: see `error`).
 */
export type SidecarState = 'starting' | 'working' | 'idle' | 'reconnecting' | 'waiting for install' | 'stopped' | 'failed';

export interface SidecarStatus {
  id: string;
  state: SidecarState;
  /** Since when it is in this state. */
  since: Date;
  /** Outages of the database it came through. */
  outages: number;
  /** The outage under way (state 'reconnecting'), or the last one. */
  outage?: { startedAt: Date; durationMs?: number; reason: string };
  batches: number;
  /** Why it failed (state 'failed'). */
  error?: string;
}

/**
 * The sidecar loop. Stateless: its identity and claims live in the database, so
 * any number of these, on any machines, share the work.
 *
 * While there is work it claims batches round-robin across listeners. When there
 * is none it takes the sleep lock (superduper._sleep_lock), looks once more, and
 * waits for a NOTIFY or the reconciliation timer.
 *
 * It outlives the database's bad moments (restarts, crashes, failovers, killed or
 * stalled connections, refused connections): a lost connection fails the batch
 * in flight, which is handed back (superduper._worker_release) once the
 * database answers again; meanwhile it retries with capped, jittered backoff
 * and logs one line when the connection is lost and one when it is back. Only
 * errors no retry can fix end it (a bad password, the database or the layer
 * gone, a layer newer than this code): `done` rejects with them.
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
  #registered = false;
  /** Batches failed with claims outstanding: hand them back when the database answers. */
  #releaseClaims = false;
  #state: SidecarState = 'starting';
  #stateSince = new Date();
  #error: Error | undefined;
  /** An outage not yet reported to the database (by the next heartbeat). */
  #unreportedOutage: { at: string; seconds: number; reason: string } | undefined;
  #reachedOnce = false;
  /** Whether the LISTEN connection is up: while it is not, changes and model calls are looked for often. */
  #listening = true;
  #settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /**
   * Resolves when the sidecar stops, rejects when an error no retry can fix
   * ended it. (Unobserved, a rejection here does not end the process.)
   */
  readonly done: Promise<void>;
  readonly #onLost = () => this.#wakeUp?.();
  readonly #onUp = (outage: { startedAt: Date; durationMs?: number; reason: string }) => {
    this.#unreportedOutage = { at: outage.startedAt.toISOString(), seconds: (outage.durationMs ?? 0) / 1000, reason: outage.reason };
  };

  constructor(db: Database, models: ModelCache, options: WorkerOptions) {
    this.#db = db;
    this.#models = models;
    this.#options = {
      reconcileMs: options.reconcileMs ?? (db.kind === 'pglite' ? 200 : 2000),
      heartbeatMs: options.heartbeatMs ?? 2000,
      deadAfterMs: options.deadAfterMs ?? 15000,
      stopTimeoutMs: options.stopTimeoutMs ?? 30000,
      concurrency: Math.max(1, options.concurrency ?? 2),
      stallTimeoutMs: options.stallTimeoutMs ?? 10_000,
      reconnectMaxMs: options.reconnectMaxMs ?? 1000,
    };
    this.#log = options.logger.child({ worker: this.id });
    this.#sharedSession = db.kind === 'pglite';
    this.#requests = this.#sharedSession ? undefined : new RequestServer(db, models, this.id, this.#log, this.#options.reconnectMaxMs);
    this.done = new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    this.done.catch(() => {});
  }

  /** Number of batches this worker has written (for tests and progress). */
  get batches(): number {
    return this.#batches;
  }

  /** What it is doing; 'reconnecting' whenever its database is unreachable. */
  get state(): SidecarState {
    const active = this.#state === 'working' || this.#state === 'idle' || this.#state === 'starting';
    return active && this.#db.health.state === 'down' ? 'reconnecting' : this.#state;
  }

  /** What this sidecar is doing, for health checks (superduper start --health-port) and status. */
  status(): SidecarStatus {
    const health = this.#db.health;
    const outage = health.outage ?? health.lastOutage;
    return {
      id: this.id,
      state: this.state,
      since: this.#stateSince,
      outages: health.outages,
      ...(outage ? { outage: { ...outage } } : {}),
      batches: this.#batches,
      ...(this.#error ? { error: describeError(this.#error) } : {}),
    };
  }

  /** Re-reads the listeners now (after an apply in this process, say). */
  refresh(): void {
    this.#refreshNeeded = true;
    this.#wakeUp?.();
  }

  /**
   * Starts the loop. Throws only for errors no retry can fix; a database that is
   * down is waited for (the sidecar starts in state 'reconnecting').
   */
  async start(): Promise<void> {
    this.#db.health.on('lost', this.#onLost);
    this.#db.health.on('up', this.#onUp);
    try {
      await this.#register();
    } catch (error) {
      const fatal = await this.#fatalError(error);
      if (fatal) {
        this.#detach();
        this.#setState('failed');
        this.#error = fatal;
        this.#settle?.reject(fatal);
        throw fatal;
      }
      // Unreachable for now: registering is the loop's first step.
      this.#setState('reconnecting');
    }
    this.#unlisten = await this.#db.listen(
      'superduper',
      (payload) => this.#notified(payload),
      () => {
        // Notifications sent while we were disconnected are lost: look again.
        this.#listening = true;
        this.#refreshNeeded = true;
        this.#requests?.wake();
        this.#wakeUp?.();
      },
      () => {
        // Until it listens again, nothing wakes it: look often instead.
        this.#listening = false;
        this.#wakeUp?.();
      },
    );
    this.#scheduleHeartbeat();
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
    clearTimeout(this.#heartbeat);
    clearInterval(this.#maintenance);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#options.stopTimeoutMs);
    });
    await Promise.race([Promise.all([this.#loop?.catch(() => {}), this.#requests?.idle()]), timedOut]);
    clearTimeout(timer);
    await this.#unlisten?.().catch(() => {});
    this.#requests?.release();
    this.#detach();
    if (this.#state !== 'failed') {
      await this.#db.query('SELECT superduper._worker_stop($1)', [this.id], { timeoutMs: 5000 }).catch((error: unknown) => {
        this.#log.warn({ error: describeError(error) }, 'could not release claims on stop (they are released when their leases run out)');
      });
      this.#setState('stopped');
      this.#settle?.resolve();
    }
    this.#log.info({ batches: this.#batches }, 'sidecar stopped');
  }

  #detach(): void {
    this.#db.health.off('lost', this.#onLost);
    this.#db.health.off('up', this.#onUp);
  }

  #setState(state: SidecarState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#stateSince = new Date();
  }

  /** Announces this sidecar; checks the layer against this code. */
  async #register(): Promise<void> {
    const result = await this.#db.query<{ layer: LayerVersion }>(
      'SELECT superduper._worker_register($1, $2, $3, $4, make_interval(secs => $5), $6) AS layer',
      [this.id, hostname(), process.pid, this.#models.functions.names(), this.#options.heartbeatMs / 1000, codeVersion],
    );
    this.#reachedOnce = true;
    this.#registered = true;
    this.#checkLayer(result.rows[0]!.layer);
  }

  /** Throws for a layer newer than this code; waits (state) for an older one to be upgraded. */
  #checkLayer(layer: LayerVersion): void {
    const comparison = compareLayer(layer);
    if (comparison === 'newer') {
      throw new SuperduperError(
        `the superduper layer in this database (${describeLayer(layer)}) is newer than this sidecar (${describeCode()})`,
        { hint: 'Upgrade superduper where this sidecar runs, then start it again.', code: 'SUPERDUPER_NEWER_DATABASE' },
      );
    }
    if (comparison === 'older') {
      if (this.#state !== 'waiting for install') {
        this.#log.warn(
          { layer: describeLayer(layer), code: describeCode() },
          'the superduper layer in this database is older than this sidecar: waiting for "superduper install" to upgrade it',
        );
      }
      this.#setState('waiting for install');
    } else if (this.#state === 'waiting for install') {
      this.#log.info('the superduper layer was upgraded: starting work');
      this.#setState('working');
    }
  }

  /** The error, made clear, if no retry can fix it (see fatal.ts); undefined otherwise. */
  #fatalError(error: unknown): Promise<Error | undefined> {
    return fatalError(error, this.#db, this.#reachedOnce);
  }

  /** Ends the sidecar for an error no retry can fix. */
  #fail(error: Error): void {
    if (this.#state === 'failed' || this.#stopping) return;
    this.#error = error;
    this.#setState('failed');
    this.#log.error({ error: describeError(error) }, 'sidecar stopped: no retry can fix this');
    this.#settle?.reject(error);
    void this.stop();
  }

  /** The database answered a round trip (one that writes) begun at startedAt: it is reachable (again). */
  #reached(startedAt?: number): void {
    this.#reachedOnce = true;
    this.#db.health.answered(startedAt);
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

  /** The next heartbeat comes heartbeatMs after this one ended: a stalled one never piles others up. */
  #scheduleHeartbeat(): void {
    if (this.#stopping) return;
    this.#heartbeat = setTimeout(() => {
      void this.#beat().finally(() => this.#scheduleHeartbeat());
    }, this.#options.heartbeatMs);
    this.#heartbeat.unref();
  }

  async #beat(): Promise<void> {
    if (!this.#registered || this.#state === 'failed') return;
    const startedAt = Date.now();
    try {
      const outage = this.#unreportedOutage;
      const beat = await this.#db.query<{ beat: LayerVersion & { released: number } }>(
        'SELECT superduper._worker_heartbeat($1, make_interval(secs => $2), $3, $4) AS beat',
        [this.id, this.#options.deadAfterMs / 1000, this.#reportedState(), outage ? JSON.stringify(outage) : null],
        { timeoutMs: this.#options.stallTimeoutMs },
      );
      if (outage === this.#unreportedOutage) this.#unreportedOutage = undefined;
      this.#reached(startedAt);
      const { released, ...layer } = beat.rows[0]!.beat;
      this.#checkLayer(layer);
      if (released > 0) {
        this.#log.warn({ sidecars: released }, 'released the claims of sidecars that stopped answering');
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
      if ((error as { code?: string }).code === 'SDU01' || /is not registered/.test(describeError(error))) {
        // Presumed dead by another sidecar (a long pause); our claims were released.
        this.#registered = false;
        await this.#register().catch(() => {});
        return;
      }
      if (classifyDatabaseError(error) === 'connection') {
        // A fresh round trip failed: the database, or the network to it, is
        // gone or stalled. The other connections are as suspect (a half-open
        // one would keep its query waiting for its whole deadline): close them
        // all, so that everything in flight fails now and is made again.
        this.#db.resetConnections(error as Error);
      }
      const fatal = await this.#fatalError(error);
      if (fatal) return this.#fail(fatal);
      if (classifyDatabaseError(error) !== 'connection') this.#log.warn({ error: describeError(error) }, 'heartbeat failed');
      this.#wakeUp?.();
    }
  }

  /** What the heartbeat tells the database this sidecar is doing. */
  #reportedState(): string {
    return this.#state === 'reconnecting' ? 'working' : this.#state;
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
    if (activity === this.#batchesAtLastVacuum || this.#stopping || this.#db.health.state === 'down') return;
    this.#batchesAtLastVacuum = activity;
    await this.#db.query(VACUUM_LOG).catch((error: unknown) => {
      this.#log.debug({ error: describeError(error) }, 'could not vacuum the change log');
    });
  }

  async #refresh(): Promise<void> {
    this.#refreshes++;
    this.#requests?.wake();
    // Cleared before the read, not after: a refresh asked for while the read is
    // under way (an apply that committed after it began) must not be lost.
    this.#refreshNeeded = false;
    let result;
    try {
      result = await this.#db.query<ListenerInfo>('SELECT * FROM superduper._worker_listeners($1)', [this.#models.functions.names()]);
    } catch (error) {
      this.#refreshNeeded = true;
      throw error;
    }
    this.#listeners = new Map(result.rows.map((row) => [row.id, row]));
    for (const id of [...this.#hot]) if (!this.#listeners.has(id)) this.#hot.delete(id);
    for (const row of result.rows) if (row.has_work) this.#hot.add(row.id);
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
      const iterationStarted = Date.now();
      try {
        if (!this.#registered) await this.#register();
        if (this.#state === 'waiting for install') {
          await this.#pause(5000);
          this.#registered = false; // registering again reads the layer's version
          continue;
        }
        if (this.#releaseClaims) {
          // No batch is in flight here: whatever this sidecar still has leased
          // was claimed by batches that failed with their connection.
          await this.#db.query('SELECT superduper._worker_release($1)', [this.id]);
          this.#releaseClaims = false;
        }
        if (this.#refreshNeeded) await this.#refresh();
        this.#reached(iterationStarted);
        failures = 0;
        if (this.#hot.size > 0) {
          this.#setState('working');
          await this.#workHotListeners();
          idleWait = 10;
          continue;
        }
        this.#setState('idle');
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
          // Tiny statements: a connection that does not answer them soon is stalled.
          const quick = { timeoutMs: this.#options.stallTimeoutMs };
          const locked = await connection.query<{ locked: boolean }>('SELECT superduper._sleep_lock($1) AS locked', [this.id], quick);
          try {
            await this.#refresh();
            if (this.#hot.size > 0 || this.#stopping) return 10;
            // Without the lock, writers may not notify, and without the LISTEN
            // connection their notifications are lost: wait briefly (longer
            // while the lock stays taken).
            const deaf = Math.min(this.#options.reconcileMs, 250);
            await this.#sleep(!this.#listening ? deaf : locked.rows[0]?.locked ? this.#options.reconcileMs : idleWait);
            if (this.#hot.size === 0) this.#refreshNeeded = true;
            return Math.min(idleWait * 2, this.#options.reconcileMs);
          } finally {
            await connection.query('SELECT superduper._sleep_unlock($1)', [this.id], quick);
          }
        });
      } catch (error) {
        if (this.#stopping) break;
        failures++;
        this.#refreshNeeded = true;
        this.#releaseClaims = true;
        const fatal = await this.#fatalError(error);
        if (fatal) {
          this.#fail(fatal);
          break;
        }
        let wait: number;
        const kind = classifyDatabaseError(error);
        if (kind === 'connection') {
          // Said once per outage by the database's health (see ConnectionHealth),
          // as of when this attempt began: one begun before the database last
          // answered is not news.
          this.#db.health.lost(error, iterationStarted);
          this.#log.debug({ error: describeError(error), attempt: failures }, 'database unreachable; retrying');
          this.#setState('reconnecting');
          wait = backoffMs(failures, 100, this.#options.reconnectMaxMs);
        } else if (kind === 'retry') {
          // A deadlock or serialization failure: the next try usually succeeds.
          this.#log.debug({ error: describeError(error) }, 'retrying after a lost race');
          wait = backoffMs(failures, 20, 1000);
        } else {
          // An error of ours or of a statement: say it each time, and back off
          // (250 ms doubling to 10 s) while it persists.
          wait = Math.min(250 * 2 ** (failures - 1), 10_000);
          this.#log.error({ error: describeError(error), retryInMs: wait }, 'sidecar loop error; retrying');
        }
        await this.#pause(wait);
      }
    }
  }

  /**
   * Waits ms, or until the sidecar stops (not for a notification: they keep
   * coming during an outage). The timer keeps the process alive: during an
   * outage it may be the only thing that does.
   */
  #pause(ms: number): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), this.#stopped]).finally(() => clearTimeout(timer));
  }

  /**
   * Runs batches of the listeners known to have work, round-robin, in
   * `concurrency` lanes: while one lane's model computes, another's claim or
   * write is in the database, so neither waits for the other. When one lane
   * fails the others finish their batch and stop, so that nothing of this
   * sidecar is in flight when the error is handled.
   */
  async #workHotListeners(): Promise<void> {
    let turn = 0;
    let failed = false;
    const next = (): ListenerInfo | undefined => {
      const ids = [...this.#hot];
      if (ids.length === 0) return undefined;
      const id = ids[turn++ % ids.length]!;
      return this.#listeners.get(id);
    };
    const lane = async () => {
      while (!this.#stopping && !failed && this.#hot.size > 0) {
        const listener = next();
        if (!listener) return;
        const batchStarted = Date.now();
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
            this.#reached(batchStarted);
            this.#log.debug({ listener: listener.name, ...outcome }, 'batch');
          }
        } catch (error) {
          this.#hot.delete(listener.id);
          if (codeGone(error)) {
            // Its functions are gone or replaced: removed, frozen or promoted meanwhile.
            this.#refreshNeeded = true;
            continue;
          }
          failed = true;
          throw error;
        }
      }
    };
    const lanes = await Promise.allSettled(Array.from({ length: this.#options.concurrency }, lane));
    const rejected = lanes.find((lane): lane is PromiseRejectedResult => lane.status === 'rejected');
    if (rejected) throw rejected.reason;
  }

  /**
   * Waits ms, or until woken (a NOTIFY, a stop, a lost connection). Returns at
   * once if work is already known: a NOTIFY may have arrived between the last
   * look and now.
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
