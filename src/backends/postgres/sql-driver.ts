import type { Backend } from '../backend.js';
import type { ConnectionHealth } from '../connection-health.js';

/**
 * What the PostgreSQL backend's SQL (this folder) needs from a connection to a
 * PostgreSQL database. Declared structurally, so that the backend does not depend
 * on a driver: node-postgres (driver.ts) and the embedded PGlite
 * (../pglite/driver.ts) are small adapters to it. The core never sees this: it
 * talks to a Backend (../backend.ts); users get it as `Superduper.db`, for their
 * own SQL.
 */
export interface QueryResult<Row> {
  rows: Row[];
  rowCount?: number | null;
}

export interface QueryOptions {
  /** The database must answer within this long, or the connection is taken as stalled and closed. */
  timeoutMs?: number;
}

export interface Queryable {
  query<Row = Record<string, unknown>>(text: string, values?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<Row>>;
}

/** One connection taken from a backend, until released. */
export interface Connection extends Queryable {
  /** Gives the connection back; `broken` drops it (it may hold session state). */
  release(broken?: boolean): void;
}

export interface SqlDriver extends Queryable {
  /** A connection string other processes can use, when there is one. */
  readonly uri: string | undefined;
  /** Whether the database is reachable from this process, and its outages. */
  readonly health: ConnectionHealth;
  /** Takes one connection for exclusive use (query builders' transactions); release it after. */
  acquire(): Promise<Connection>;
  /** Runs fn on one connection held for its duration (for session-level locks), not in a transaction. */
  withConnection<T>(fn: (connection: Queryable) => Promise<T>): Promise<T>;
  /** Runs fn in one transaction on one connection; rolls back if fn throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls onNotify for each NOTIFY on channel, reconnecting by itself after a
   * lost connection; onLost is called when the connection is lost and
   * onReconnect after each reconnection, because notifications sent meanwhile
   * are lost. Returns the unsubscribe function.
   */
  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onReconnect?: () => void,
    onLost?: () => void,
  ): Promise<() => Promise<void>>;
  /** A query parameter holding an array of vectors, for `$n::vector[]`, in the cheapest form this engine takes. */
  vectorArrayParam(vectors: readonly ArrayLike<number>[]): unknown;
  /**
   * Closes every connection at once, in use or idle, LISTEN included: after a
   * check found the database not answering, so that queries stuck on a stalled
   * network fail now and are made again on new connections.
   */
  resetConnections(error: Error): void;
  /** Re-reads type OIDs (pgvector's) after the extension was created. */
  refreshTypes(): Promise<void>;
  /** The backend for a driver whose database differs from a server's (the embedded one); absent: a server's. */
  backend?(): Backend;
  close(): Promise<void>;
}
