import type { Backend } from '../backends/backend.js';
import { classifyDatabaseError, errorFields } from '../errors.js';
import type { LayerVersion } from '../layer-version.js';
import type { Logger } from '../logger.js';
import type { InFlight } from './listener-info.js';
import { SQLSTATES } from '../generated/constants.js';

export interface HeartbeatHooks {
  /** Whether the sidecar is registered (beats are skipped until it is). */
  registered(): boolean;
  /** What the heartbeat tells the database this sidecar is doing. */
  state(): string;
  /** The database answered a round trip begun at startedAt. */
  reached(startedAt: number): void;
  /** The layer the database reported, to check against this code (may throw). */
  layer(layer: LayerVersion): void;
  /** Other sidecars' claims were released: there may be work. */
  released(count: number): void;
  /** This sidecar was presumed dead by another (its claims were released): register again. */
  presumedDead(): Promise<void>;
  /** An error no retry can fix, or undefined (see fatal.ts). */
  fatal(error: unknown): Promise<Error | undefined>;
  fail(error: Error): void;
  /** Something went wrong: look at everything again. */
  wake(): void;
}

/**
 * A sidecar's liveness: every heartbeatMs it tells the database it is alive (and
 * of the outage it came through), which releases the claims of sidecars silent
 * for deadAfterMs, and it extends the lease of any batch that has run a third of
 * its lease. A heartbeat not answered within stallTimeoutMs means the network or
 * the database stalled: every connection is made again.
 */
export class Heartbeat {
  readonly #backend: Backend;
  readonly #sidecarId: string;
  readonly #log: Logger;
  readonly #options: { heartbeatMs: number; deadAfterMs: number; stallTimeoutMs: number };
  readonly #hooks: HeartbeatHooks;
  readonly #inFlight: ReadonlySet<InFlight>;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** An outage not yet reported to the database (by the next heartbeat). */
  #unreportedOutage: { at: string; seconds: number; reason: string } | undefined;

  constructor(
    backend: Backend,
    sidecarId: string,
    log: Logger,
    options: { heartbeatMs: number; deadAfterMs: number; stallTimeoutMs: number },
    inFlight: ReadonlySet<InFlight>,
    hooks: HeartbeatHooks,
  ) {
    this.#backend = backend;
    this.#sidecarId = sidecarId;
    this.#log = log;
    this.#options = options;
    this.#inFlight = inFlight;
    this.#hooks = hooks;
  }

  /** An outage the database came back from: told with the next beat. */
  outageEnded(outage: { startedAt: Date; durationMs?: number; reason: string }): void {
    this.#unreportedOutage = { at: outage.startedAt.toISOString(), seconds: (outage.durationMs ?? 0) / 1000, reason: outage.reason };
  }

  start(): void {
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** The next heartbeat comes heartbeatMs after this one ended: a stalled one never piles others up. */
  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.#beat().finally(() => this.#schedule());
    }, this.#options.heartbeatMs);
    this.#timer.unref();
  }

  async #beat(): Promise<void> {
    if (!this.#hooks.registered()) return;
    const startedAt = Date.now();
    try {
      const outage = this.#unreportedOutage;
      const beat = await this.#backend.sidecars.heartbeat(this.#sidecarId, {
        deadAfterMs: this.#options.deadAfterMs,
        state: this.#hooks.state(),
        outage,
        timeoutMs: this.#options.stallTimeoutMs,
      });
      if (outage === this.#unreportedOutage) this.#unreportedOutage = undefined;
      this.#hooks.reached(startedAt);
      this.#hooks.layer(beat.layer);
      if (beat.released > 0) {
        this.#log.warn({ sidecars: beat.released }, 'released the claims of sidecars that stopped answering');
        this.#hooks.released(beat.released);
      }
      for (const flight of this.#inFlight) {
        if (Date.now() - flight.claimedAt <= (flight.listener.settings.lease_seconds * 1000) / 3) continue;
        await this.#backend.queue.extendLease(this.#sidecarId, flight);
        flight.claimedAt = Date.now();
      }
    } catch (error) {
      if ((error as { code?: string }).code === SQLSTATES.not_registered) {
        // Presumed dead by another sidecar (a long pause); our claims were released.
        await this.#hooks.presumedDead().catch(() => {});
        return;
      }
      if (classifyDatabaseError(error) === 'connection') {
        // A fresh round trip failed: the database, or the network to it, is
        // gone or stalled. The other connections are as suspect (a half-open
        // one would keep its query waiting for its whole deadline): close them
        // all, so that everything in flight fails now and is made again.
        this.#backend.resetConnections(error as Error);
      }
      const fatal = await this.#hooks.fatal(error);
      if (fatal) return this.#hooks.fail(fatal);
      if (classifyDatabaseError(error) !== 'connection') this.#log.warn(errorFields(error), 'heartbeat failed');
      this.#hooks.wake();
    }
  }
}
