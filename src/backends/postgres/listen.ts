import pg from 'pg';
import { classifyDatabaseError, STALLED, SuperduperError } from '../../errors.js';
import { backoffMs, type ConnectionHealth } from '../connection-health.js';

interface Subscription {
  channel: string;
  onNotify(payload: string): void;
  onReconnect?(): void;
  /** The connection was lost: until onReconnect, notifications are lost too. */
  onLost?(): void;
}

/**
 * The one connection of a process that LISTENs, for every channel anyone here
 * listens on. It reconnects by itself for as long as it takes (backing off, with
 * jitter, to a second between attempts), LISTENs again, and then tells each
 * subscriber, because notifications sent while it was down are lost. A
 * connection that stops answering (a stalled network, a half-open socket: TCP
 * keepalive does not notice a middlebox that still ACKs) is found by a check
 * query every checkMs that must answer within stallMs, and replaced.
 *
 * (pg-listen did this job before; it could leave a connection open after close()
 * when close came during a reconnect, never timed its check query out, and gave
 * up after a LISTEN failed right after reconnecting.)
 */
export class ListenConnection {
  readonly #subscriptions = new Set<Subscription>();
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #check: NodeJS.Timeout | undefined;
  #closed = false;
  #connectedOnce = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly health: ConnectionHealth,
    private readonly options: { checkMs: number; stallMs: number },
  ) {}

  /**
   * Subscribes. Resolves once the channel is listened to, or once the first
   * attempt to connect has failed (reconnecting goes on in the background).
   */
  async listen(subscription: Subscription): Promise<() => Promise<void>> {
    this.#subscriptions.add(subscription);
    const client = this.#client;
    if (client) {
      await this.#query(client, `LISTEN ${pg.escapeIdentifier(subscription.channel)}`).catch((error: unknown) => this.#broken(client, error));
    } else {
      await this.#ensureConnected();
    }
    return async () => {
      this.#subscriptions.delete(subscription);
      const current = this.#client;
      const stillWanted = [...this.#subscriptions].some((s) => s.channel === subscription.channel);
      if (current && !stillWanted) await this.#query(current, `UNLISTEN ${pg.escapeIdentifier(subscription.channel)}`).catch(() => {});
    };
  }

  /** Whether the LISTEN is in place right now. */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** Drops the connection (a stall found elsewhere); it is made again. */
  reset(error: unknown): void {
    if (this.#client) this.#broken(this.#client, error);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#check);
    const client = this.#client;
    this.#client = undefined;
    if (client) await endClient(client);
  }

  #ensureConnected(): Promise<void> {
    this.#connecting ??= this.#connectOnce().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /** One attempt; on failure, the retries go on in the background. */
  async #connectOnce(): Promise<void> {
    try {
      await this.#open();
    } catch {
      void this.#reconnect();
    }
  }

  async #reconnect(): Promise<void> {
    for (let attempt = 1; !this.#closed && !this.#client; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)).unref());
      if (this.#closed) return;
      try {
        await this.#open();
      } catch {
        // reported to the health by #open; try again
      }
    }
  }

  async #open(): Promise<void> {
    const startedAt = Date.now();
    const client = new pg.Client(this.config);
    // Errors on a connection that is being replaced are expected; each is reported once.
    client.on('error', (error) => this.#broken(client, error));
    client.on('end', () => this.#broken(client, new Error('Connection terminated unexpectedly')));
    client.on('notification', (message) => {
      for (const subscription of this.#subscriptions) {
        if (subscription.channel !== message.channel) continue;
        try {
          subscription.onNotify(message.payload ?? '');
        } catch {
          // a subscriber's failure is its own
        }
      }
    });
    try {
      await client.connect();
      const channels = [...new Set([...this.#subscriptions].map((s) => s.channel))];
      for (const channel of channels) await this.#query(client, `LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (thrown) {
      const error = connectError(thrown, this.config.connectionTimeoutMillis ?? 0);
      this.health.lost(error, startedAt);
      destroyClient(client);
      throw error;
    }
    if (this.#closed) {
      await endClient(client);
      return;
    }
    this.#client = client;
    clearInterval(this.#check);
    this.#check = setInterval(() => void this.#checkAlive(client), this.options.checkMs);
    this.#check.unref();
    const reconnected = this.#connectedOnce;
    this.#connectedOnce = true;
    if (!reconnected) return;
    for (const subscription of this.#subscriptions) {
      try {
        subscription.onReconnect?.();
      } catch {
        // a subscriber's failure is its own
      }
    }
  }

  async #checkAlive(client: pg.Client): Promise<void> {
    if (client !== this.#client) return;
    const startedAt = Date.now();
    try {
      await this.#query(client, 'SELECT 1');
    } catch (error) {
      this.#broken(client, error, startedAt);
    }
  }

  #broken(client: pg.Client, error: unknown, startedAt = Date.now()): void {
    if (client !== this.#client) return;
    this.#client = undefined;
    clearInterval(this.#check);
    this.health.lost(error, startedAt);
    destroyClient(client);
    for (const subscription of this.#subscriptions) {
      try {
        subscription.onLost?.();
      } catch {
        // a subscriber's failure is its own
      }
    }
    if (!this.#closed) void this.#reconnect();
  }

  /** A query that must answer within stallMs, or the connection is taken as stalled. */
  #query(client: pg.Client, text: string): Promise<unknown> {
    return withDeadline(client, client.query(text), this.options.stallMs);
  }
}

/** Races a query against a deadline; at the deadline the connection's socket is destroyed. */
export function withDeadline<T>(client: pg.Client | pg.PoolClient, query: Promise<T>, timeoutMs: number | undefined): Promise<T> {
  if (!timeoutMs) return query;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = stalledError(timeoutMs);
      destroyClient(client, error);
      reject(error);
    }, timeoutMs);
  });
  // The query rejects too once its socket is gone; that rejection is expected.
  query.catch(() => {});
  return Promise.race([query, deadline]).finally(() => clearTimeout(timer));
}

export function stalledError(timeoutMs: number): SuperduperError {
  return new SuperduperError(`the database did not answer within ${Math.round(timeoutMs / 100) / 10} s (a stalled network or server); the connection was closed`, {
    code: STALLED,
  });
}

/**
 * node-postgres says only "timeout expired" (or, from its pool, "Connection
 * terminated due to connection timeout") when a connection attempt runs out
 * of time: said here in words an operator can act on. Other errors are as they were.
 */
export function connectError(error: unknown, timeoutMs: number): unknown {
  const message = (error as { message?: unknown })?.message;
  if (message !== 'timeout expired' && message !== 'Connection terminated due to connection timeout') return error;
  return new SuperduperError(
    `the database did not accept a connection within ${Math.round(timeoutMs / 100) / 10} s (a stalled network, or a server too busy or not listening)`,
    { code: STALLED, cause: error },
  );
}

/** Closes a connection's socket at once: no goodbye to a server that may not be listening. */
export function destroyClient(client: pg.Client | pg.PoolClient, error?: Error): void {
  const stream = (client as unknown as { connection?: { stream?: { destroy(error?: Error): void } } }).connection?.stream;
  stream?.destroy(error);
}

/** Ends a connection politely, but gives up after a second (the server may not answer). */
async function endClient(client: pg.Client): Promise<void> {
  const timer = setTimeout(() => destroyClient(client), 1000);
  try {
    await client.end();
  } catch {
    // already gone
  } finally {
    clearTimeout(timer);
  }
}

export function isConnectionError(error: unknown): boolean {
  return classifyDatabaseError(error) === 'connection';
}
