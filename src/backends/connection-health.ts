import { EventEmitter } from 'node:events';
import { classifyDatabaseError, describeError } from '../errors.js';
import type { Logger } from '../logger.js';

export type HealthState = 'up' | 'down';

export interface Outage {
  /** When the first connection was lost. */
  startedAt: Date;
  /** How long it lasted (ms), once it is over. */
  durationMs?: number;
  /** The first error seen, which says what happened. */
  reason: string;
}

/**
 * Whether a database is reachable, as seen from the connections of one process,
 * and the log lines that say so: one when the first connection is lost ("lost
 * the connection … reconnecting"), one when a round trip succeeds again
 * ("reconnected after …"), and a reminder a minute while it lasts; never a line
 * per failed connection or query. Connections report to it: a failed connection
 * or a query that found its connection gone calls lost(), a query answered calls
 * answered(). Emits 'lost' (every connection loss, so that code waiting on a
 * connection can wake up), 'down' and 'up' (transitions).
 */
export class ConnectionHealth extends EventEmitter {
  #state: HealthState = 'up';
  #outage: Outage | undefined;
  #lastOutage: Outage | undefined;
  #outages = 0;
  #lastReminder = 0;
  #lastError: string | undefined;
  /** When a round trip last succeeded (Date.now()). */
  #lastAnswered = 0;

  constructor(
    private readonly where: string,
    private readonly logger: Logger | undefined,
  ) {
    super();
    // 'lost' is informational; nobody listening is fine.
    this.setMaxListeners(0);
  }

  get state(): HealthState {
    return this.#state;
  }

  /** Outages since this process connected. */
  get outages(): number {
    return this.#outages;
  }

  /** The outage under way, if any. */
  get outage(): Outage | undefined {
    return this.#outage;
  }

  /** The last outage that ended. */
  get lastOutage(): Outage | undefined {
    return this.#lastOutage;
  }

  /** The last connection error seen while down. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /**
   * A connection was lost or could not be made. Errors that are not about the
   * connection (a statement's own error) are ignored here: they are the caller's.
   * startedAt is when the failed attempt or query began: one that began before
   * the database last answered says nothing new (a connection attempt made
   * during an outage that times out after it, a socket left from before it).
   */
  lost(error: unknown, startedAt = Date.now()): void {
    if (classifyDatabaseError(error) !== 'connection') return;
    if (this.#state === 'up' && startedAt < this.#lastAnswered) return;
    const reason = firstLine(describeError(error));
    this.#lastError = reason;
    this.emit('lost', error);
    if (this.#state === 'down') {
      const now = Date.now();
      if (now - this.#lastReminder >= 60_000) {
        this.#lastReminder = now;
        const seconds = Math.round((now - this.#outage!.startedAt.getTime()) / 1000);
        this.logger?.warn({ database: this.where, error: reason, downForSeconds: seconds }, `the database is still unreachable after ${seconds} s; reconnecting`);
      }
      return;
    }
    this.#state = 'down';
    this.#outages++;
    this.#outage = { startedAt: new Date(), reason };
    this.#lastReminder = Date.now();
    this.logger?.warn({ database: this.where, error: reason }, 'lost the connection to the database; reconnecting');
    this.emit('down', this.#outage);
  }

  /**
   * A round trip that began at startedAt succeeded. One that began before the
   * outage did (a statement answered while the server was shutting down) says
   * nothing about now: the outage goes on.
   */
  answered(startedAt = Date.now()): void {
    this.#lastAnswered = Math.max(this.#lastAnswered, startedAt);
    if (this.#state === 'up') return;
    if (startedAt < this.#outage!.startedAt.getTime()) return;
    const outage = this.#outage!;
    outage.durationMs = Date.now() - outage.startedAt.getTime();
    this.#state = 'up';
    this.#lastOutage = outage;
    this.#outage = undefined;
    this.#lastError = undefined;
    this.logger?.info(
      { database: this.where, downForMs: outage.durationMs, reason: outage.reason },
      `reconnected to the database after ${(outage.durationMs / 1000).toFixed(1)} s`,
    );
    this.emit('up', outage);
  }
}

function firstLine(text: string): string {
  const newline = text.indexOf('\n');
  return newline === -1 ? text : text.slice(0, newline);
}

/**
 * Waits before the next attempt to reach a database: doubling from baseMs to at
 * most capMs, each wait drawn from its upper half (so that many sidecars that
 * lost the same server do not come back in step).
 */
export function backoffMs(attempt: number, baseMs = 100, capMs = 1000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
