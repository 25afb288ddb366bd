import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { backoffMs } from '../backends/connection-health.js';
import type { Backend } from '../backends/backend.js';
import { configuration, SIDECAR_DEFAULTS } from '../config.js';
import { classifyDatabaseError, describeError, errorFields, SuperduperError } from '../errors.js';
import { compareLayer, describeCode, describeLayer, type LayerVersion } from '../layer-version.js';
import type { Logger } from '../logger.js';
import type { BatchObserver } from './metrics.js';
import type { ModelCache } from '../models/registry.js';
import { fatalError } from './fatal.js';
import { Heartbeat } from './heartbeat.js';
import { workHotListeners } from './lanes.js';
import type { InFlight, ListenerInfo } from './listener-info.js';
import { RequestServer } from './requests.js';

export interface SidecarOptions {
  logger: Logger;
  /**
   * How often to look for work even without a wake-up (lost while disconnected).
   * Default: the backend's (2000 ms on a server; 200 ms on the embedded database,
   * where triggers cannot wake a sidecar).
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
  /** Told each batch's steps (metrics.ts: SidecarMetrics, for `superduper start --metrics`). */
  observer?: BatchObserver;
  /** The most memory a training run's fit may take, in MB. Default: SUPERDUPER_TRAINING_MEMORY_MB, else 2048. */
  trainingMemoryMb?: number;
  /** A training run is another sidecar's to take over once its lease (extended while it fits) runs out. Default 60 s. */
  trainingLeaseSeconds?: number;
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
 * While there is work it claims batches round-robin across listeners (lanes.ts).
 * When there is none it marks itself asleep (the backend's wake-up, e.g. a
 * sleep lock on PostgreSQL), looks once more, and waits to be woken or for the
 * reconciliation timer. Its liveness is heartbeat.ts.
 *
 * It outlives the database's bad moments (restarts, crashes, failovers, killed or
 * stalled connections, refused connections): a lost connection fails the batch
 * in flight, which is handed back (the queue's release) once the database
 * answers again; meanwhile it retries with capped, jittered backoff
 * and logs one line when the connection is lost and one when it is back. Only
 * errors no retry can fix end it (a bad password, the database or the layer
 * gone, a layer newer than this code): `done` rejects with them.
 */
export class Sidecar {
  readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #backend: Backend;
  readonly #models: ModelCache;
  readonly #log: Logger;
  readonly #options: Required<Omit<SidecarOptions, 'logger' | 'observer'>> & Pick<SidecarOptions, 'observer'>;

  #listeners = new Map<number, ListenerInfo>();
  readonly #hot = new Set<number>();
  #refreshNeeded = true;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wakeUp: (() => void) | undefined;
  readonly #heartbeat: Heartbeat;
  #maintenance: NodeJS.Timeout | undefined;
  #batchesAtLastVacuum = -1;
  #refreshes = 0;
  #unlisten: (() => Promise<void>) | undefined;
  readonly #inFlight = new Set<InFlight>();
  /** Answers model calls from queries, when sidecars do (not where the database's host process does). */
  readonly #requests: RequestServer | undefined;
  #lastPromoteCheck = 0;
  /** The vector index build under way in the background, if any. */
  #indexBuild: Promise<void> | undefined;
  /** Schedules being fired in the background, if any. */
  #schedules: Promise<void> | undefined;
  #training: Promise<void> | undefined;
  /** Aborted on stop: a fit under way ends, and its run is handed over. */
  readonly #stopTraining = new AbortController();
  #lastRefresh = 0;
  /** A refresh under way while lanes work: the other lanes wait for it rather than start their own. */
  #refreshing: Promise<void> | undefined;
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
  readonly #onUp = (outage: { startedAt: Date; durationMs?: number; reason: string }) => this.#heartbeat.outageEnded(outage);

  constructor(backend: Backend, models: ModelCache, options: SidecarOptions) {
    this.#backend = backend;
    this.#models = models;
    this.#options = {
      reconcileMs: options.reconcileMs ?? backend.capabilities.defaultReconcileMs,
      heartbeatMs: options.heartbeatMs ?? SIDECAR_DEFAULTS.heartbeatMs,
      deadAfterMs: options.deadAfterMs ?? SIDECAR_DEFAULTS.deadAfterMs,
      stopTimeoutMs: options.stopTimeoutMs ?? SIDECAR_DEFAULTS.stopTimeoutMs,
      concurrency: Math.max(1, options.concurrency ?? SIDECAR_DEFAULTS.concurrency),
      stallTimeoutMs: options.stallTimeoutMs ?? SIDECAR_DEFAULTS.stallTimeoutMs,
      reconnectMaxMs: options.reconnectMaxMs ?? SIDECAR_DEFAULTS.reconnectMaxMs,
      observer: options.observer,
      trainingMemoryMb: options.trainingMemoryMb ?? configuration().trainingMemoryMb,
      trainingLeaseSeconds: options.trainingLeaseSeconds ?? SIDECAR_DEFAULTS.trainingLeaseSeconds,
    };
    this.#log = options.logger.child({ sidecar: this.id });
    this.#requests =
      backend.capabilities.modelCallsFromQueries === 'sidecars'
        ? new RequestServer(backend, models, this.id, this.#log, this.#options.reconnectMaxMs)
        : undefined;
    this.#heartbeat = new Heartbeat(backend, this.id, this.#log, this.#options, this.#inFlight, {
      registered: () => this.#registered && this.#state !== 'failed',
      state: () => (this.#state === 'reconnecting' ? 'working' : this.#state),
      reached: (startedAt) => this.#reached(startedAt),
      layer: (layer) => this.#checkLayer(layer),
      released: () => {
        this.#refreshNeeded = true;
        this.#wakeUp?.();
      },
      presumedDead: async () => {
        this.#registered = false;
        await this.#register();
      },
      fatal: (error) => this.#fatalError(error),
      fail: (error) => this.#fail(error),
      wake: () => this.#wakeUp?.(),
    });
    this.done = new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    this.done.catch(() => {});
  }

  /** Number of batches this sidecar has written (for tests and progress). */
  get batches(): number {
    return this.#batches;
  }

  /** What it is doing; 'reconnecting' whenever its database is unreachable. */
  get state(): SidecarState {
    const active = this.#state === 'working' || this.#state === 'idle' || this.#state === 'starting';
    return active && this.#backend.health.state === 'down' ? 'reconnecting' : this.#state;
  }

  /** What this sidecar is doing, for health checks (superduper start --health-port) and status. */
  status(): SidecarStatus {
    const health = this.#backend.health;
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
    this.#backend.health.on('lost', this.#onLost);
    this.#backend.health.on('up', this.#onUp);
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
    this.#unlisten = await this.#backend.wakeUp.subscribe({
      changed: (id) => {
        if (id !== undefined && this.#listeners.has(id)) this.#hot.add(id);
        else this.#refreshNeeded = true;
        this.#wakeUp?.();
      },
      request: (id) => (id === undefined ? this.#requests?.wake() : this.#requests?.take(id)),
      carried: (request) => this.#requests?.takeCarried(request),
      reconnected: () => {
        // Wake-ups sent while we were disconnected are lost: look again.
        this.#listening = true;
        this.#refreshNeeded = true;
        this.#requests?.wake();
        this.#wakeUp?.();
      },
      lost: () => {
        // Until it listens again, nothing wakes it: look often instead.
        this.#listening = false;
        this.#wakeUp?.();
      },
    });
    this.#heartbeat.start();
    this.#maintenance = setInterval(() => void this.#maintain(), 1000);
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
    this.#stopTraining.abort(new Error('the sidecar is stopping'));
    this.#markStopped();
    this.#wakeUp?.();
    this.#heartbeat.stop();
    clearInterval(this.#maintenance);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#options.stopTimeoutMs);
    });
    // (A vector index still being built is cut short when the connections
    // close: its invalid index is dropped and built again by the next sidecar.)
    await Promise.race([Promise.all([this.#loop?.catch(() => {}), this.#requests?.idle(), this.#indexBuild, this.#schedules, this.#training]), timedOut]);
    clearTimeout(timer);
    await this.#unlisten?.().catch(() => {});
    this.#requests?.release();
    this.#detach();
    if (this.#state !== 'failed') {
      await this.#backend.sidecars.stop(this.id, 5000).catch((error: unknown) => {
        this.#log.warn(errorFields(error), 'could not release claims on stop (they are released when their leases run out)');
      });
      this.#setState('stopped');
      this.#settle?.resolve();
    }
    this.#log.info({ batches: this.#batches }, 'sidecar stopped');
  }

  #detach(): void {
    this.#backend.health.off('lost', this.#onLost);
    this.#backend.health.off('up', this.#onUp);
  }

  #setState(state: SidecarState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#stateSince = new Date();
  }

  /** Announces this sidecar; checks the layer against this code. */
  async #register(): Promise<void> {
    const layer = await this.#backend.sidecars.register({
      id: this.id,
      host: hostname(),
      pid: process.pid,
      functions: this.#models.functions.names(),
      heartbeatMs: this.#options.heartbeatMs,
    });
    this.#reachedOnce = true;
    this.#registered = true;
    this.#checkLayer(layer);
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
          'the superduper layer in this database is older than this sidecar: waiting for "npx superduper install" to upgrade it',
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
    return fatalError(error, this.#backend, this.#reachedOnce);
  }

  /** Ends the sidecar for an error no retry can fix. */
  #fail(error: Error): void {
    if (this.#state === 'failed' || this.#stopping) return;
    this.#error = error;
    this.#setState('failed');
    this.#log.error(errorFields(error), 'sidecar stopped: no retry can fix this');
    this.#settle?.reject(error);
    void this.stop();
  }

  /** The database answered a round trip (one that writes) begun at startedAt: it is reachable (again). */
  #reached(startedAt?: number): void {
    this.#reachedOnce = true;
    this.#backend.health.answered(startedAt);
  }

  /** The backend's housekeeping (the change log's vacuum on PostgreSQL), once a second while the sidecar works. */
  async #maintain(): Promise<void> {
    const activity = this.#batches + this.#refreshes;
    if (activity === this.#batchesAtLastVacuum || this.#stopping || this.#backend.health.state === 'down') return;
    this.#batchesAtLastVacuum = activity;
    await this.#backend.sidecars.maintain().catch((error: unknown) => {
      this.#log.debug(errorFields(error), 'housekeeping failed');
    });
  }

  async #refresh(): Promise<void> {
    this.#refreshes++;
    this.#lastRefresh = Date.now();
    this.#requests?.wake();
    // Cleared before the read, not after: a refresh asked for while the read is
    // under way (an apply that committed after it began) must not be lost.
    this.#refreshNeeded = false;
    let rows;
    try {
      rows = await this.#backend.sidecars.listeners(this.#models.functions.names());
    } catch (error) {
      this.#refreshNeeded = true;
      throw error;
    }
    this.#listeners = new Map(rows.map((row) => [row.id, row]));
    for (const id of [...this.#hot]) if (!this.#listeners.has(id)) this.#hot.delete(id);
    for (const row of rows) if (row.has_work) this.#hot.add(row.id);
    if (Date.now() - this.#lastPromoteCheck > this.#options.reconcileMs) {
      this.#lastPromoteCheck = Date.now();
      await this.#promote();
      this.#buildVectorIndexes();
      this.#runSchedules();
      this.#runTraining();
      await this.#backend.sidecars.refreshSearchStatistics().catch((error: unknown) => {
        this.#log.debug(errorFields(error), 'reading search statistics failed');
      });
    }
  }

  /**
   * A refresh between batches, once per reconcileMs, or when one was asked
   * for. One asked for (a listener changed) is waited for: the batches must
   * not run on what it replaces. One that is only due runs beside the
   * batches: it finds work that appeared meanwhile, and a wake-up after a long
   * sleep (a sporadic write) should not wait for it before its claim. If that
   * one fails, the next batch waits for another, which reports the error.
   */
  #reconcileWhileWorking(): Promise<void> {
    const start = () =>
      (this.#refreshing ??= this.#refresh().finally(() => {
        this.#refreshing = undefined;
      }));
    if (this.#refreshNeeded) return start();
    if (!this.#refreshing && Date.now() - this.#lastRefresh >= this.#options.reconcileMs) {
      start().catch(() => {
        this.#refreshNeeded = true;
      });
    }
    return Promise.resolve();
  }

  /**
   * Vector index versions a breaking change asked for, built beside the
   * current ones and swapped in. In the background: a graph over many rows
   * takes minutes, and the listeners' work goes on meanwhile (one build at a
   * time in this sidecar; a failed one is tried again at the next reconcile).
   */
  #buildVectorIndexes(): void {
    if (this.#indexBuild || this.#stopping) return;
    this.#indexBuild = this.#backend.sidecars
      .buildVectorIndexes()
      .then((swapped) => {
        if (swapped > 0) this.#log.info({ swapped }, 'swapped in rebuilt vector indexes');
      })
      .catch((error: unknown) => {
        this.#log.warn(errorFields(error), 'building a vector index failed; trying again at the next reconcile');
      })
      .finally(() => {
        this.#indexBuild = undefined;
      });
  }

  /** Schedules that are due, fired (one sidecar per due time), in the background as builds are. */
  #runSchedules(): void {
    if (this.#schedules || this.#stopping) return;
    this.#schedules = this.#backend.sidecars
      .runSchedules(this.id)
      .then((fired) => {
        if (fired > 0) this.#log.info({ fired }, 'fired schedules');
      })
      .catch((error: unknown) => {
        this.#log.warn(errorFields(error), 'firing schedules failed; trying again at the next reconcile');
      })
      .finally(() => {
        this.#schedules = undefined;
      });
  }

  /**
   * Training runs waiting (sql/functions/047_trainers.sql), fitted one at a
   * time in the background: a fit takes seconds to minutes, in a worker thread
   * (src/training/), while listeners' work goes on. After a run, the next one
   * is looked for at once.
   */
  #runTraining(): void {
    if (this.#training || this.#stopping) return;
    this.#training = this.#backend.sidecars
      .runTraining({
        sidecarId: this.id,
        leaseSeconds: this.#options.trainingLeaseSeconds,
        memoryMb: this.#options.trainingMemoryMb,
        signal: this.#stopTraining.signal,
      })
      .then((outcome) => {
        if (!outcome) return false;
        const { state, ...fields } = outcome;
        if (state === 'failed') this.#log.warn(fields, 'training run failed');
        else this.#log.info({ ...fields, state }, 'training run ended');
        if (state === 'done' && outcome.deployed) this.#refreshNeeded = true;
        return true;
      })
      .catch((error: unknown) => {
        if (!this.#stopping) this.#log.warn(errorFields(error), 'a training run was interrupted; it is taken over when its lease runs out');
        return false;
      })
      .then((ran) => {
        this.#training = undefined;
        if (ran) this.#runTraining();
      });
  }

  /** Building versions whose backfill is complete replace their current version. */
  async #promote(): Promise<void> {
    if ((await this.#backend.sidecars.promoteReady()) > 0) {
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
          await this.#backend.queue.release(this.id);
          this.#releaseClaims = false;
        }
        if (this.#refreshNeeded) await this.#refresh();
        this.#reached(iterationStarted);
        failures = 0;
        if (this.#hot.size > 0) {
          this.#setState('working');
          await workHotListeners({
            backend: this.#backend,
            models: this.#models,
            sidecarId: this.id,
            logger: this.#log,
            concurrency: this.#options.concurrency,
            hot: this.#hot,
            listeners: () => this.#listeners,
            inFlight: this.#inFlight,
            stopping: () => this.#stopping,
            wrote: (startedAt) => {
              this.#batches++;
              this.#reached(startedAt);
            },
            promote: () => this.#promote(),
            refreshNeeded: () => {
              this.#refreshNeeded = true;
            },
            reconcile: () => this.#reconcileWhileWorking(),
            observer: this.#options.observer,
          });
          idleWait = 10;
          continue;
        }
        this.#setState('idle');
        if (this.#backend.capabilities.sharedSession || !this.#backend.capabilities.crossSessionNotify) {
          // Writers cannot wake this sidecar (on the embedded database they and
          // the sidecar share one session, so a sleep mark never blocks them):
          // look again after reconcileMs, or when the backend sees a write.
          await this.#sleep(this.#options.reconcileMs);
          this.#refreshNeeded = true;
          continue;
        }
        // Nothing known to do: sleep, marked asleep. See the backend's wake-up for
        // why marking, then looking once more, cannot miss a change.
        idleWait = await this.#backend.wakeUp.asleep(this.id, this.#options.stallTimeoutMs, async (marked) => {
          await this.#refresh();
          if (this.#hot.size > 0 || this.#stopping) return 10;
          // Without the mark, writers may not wake it, and without the wake-up
          // connection their wake-ups are lost: wait briefly (longer while the
          // mark is held).
          const deaf = Math.min(this.#options.reconcileMs, 250);
          await this.#sleep(!this.#listening ? deaf : marked ? this.#options.reconcileMs : idleWait);
          if (this.#hot.size === 0) this.#refreshNeeded = true;
          return Math.min(idleWait * 2, this.#options.reconcileMs);
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
          this.#backend.health.lost(error, iterationStarted);
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
          this.#log.error({ ...errorFields(error), retryInMs: wait }, 'sidecar loop error; retrying');
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
