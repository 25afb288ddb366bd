import pg from 'pg';
import pgvector from 'pgvector';
import { classifyDatabaseError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { encodeVectorArray } from './vector-binary.js';
import { ConnectionHealth } from '../connection-health.js';
import type { Connection, SqlDriver, Queryable, QueryOptions, QueryResult } from './sql-driver.js';
import { connectError, destroyClient, ListenConnection, withDeadline } from './listen.js';

export interface PostgresOptions {
  /** Most connections the pool opens (default 10). */
  maxConnections?: number;
  applicationName?: string;
  /**
   * 'sidecar': the connections of a sidecar (superduper start, db.start()): each
   * query must answer within queryTimeoutMs or its connection is taken as
   * stalled and closed, and the server is asked to notice a vanished client
   * soon (see SIDECAR_SESSION). 'client' (default): a user's connections, with
   * no deadline on their queries.
   */
  role?: 'client' | 'sidecar';
  /** Where outages are logged (one line when lost, one when back). */
  logger?: Logger;
  /** See role. Default 60 s for a sidecar, none for a client. */
  queryTimeoutMs?: number;
  /** How long a check of an idle connection (LISTEN) may take before the connection is taken as stalled. Default 10 s. */
  stallTimeoutMs?: number;
  /** Connect on first use instead of now (a sidecar starting while the database is down). */
  lazy?: boolean;
}

/** How long a connection attempt may take: a stalled network or a failover in progress fails it instead of the OS's TCP timeout. */
const CONNECT_TIMEOUT_MS = 5000;

/**
 * Server settings for a sidecar's sessions, set once per connection:
 * - an abandoned transaction (its sidecar frozen mid-way) releases its locks
 *   after a minute instead of blocking DDL on the listener forever;
 * - the server checks, while a query runs, that the client is still there, and
 *   probes idle connections, so that the locks of a sidecar that vanished
 *   (killed, its host gone) are released within seconds.
 * set_config rather than startup parameters: poolers such as PgBouncer refuse
 * startup parameters they do not know. Each on its own, so that one a server
 * refuses (client_connection_check_interval is Linux-only) leaves the others.
 */
const SIDECAR_SESSION = `DO $superduper$
DECLARE
  v_setting text[];
BEGIN
  FOREACH v_setting SLICE 1 IN ARRAY ARRAY[['idle_in_transaction_session_timeout', '60s'],
                                          ['client_connection_check_interval', '5s'],
                                          ['tcp_keepalives_idle', '10'], ['tcp_keepalives_interval', '5'],
                                          ['tcp_keepalives_count', '3']] LOOP
    BEGIN
      PERFORM pg_catalog.set_config(v_setting[1], v_setting[2], false);
    EXCEPTION WHEN OTHERS THEN
      NULL;
    END;
  END LOOP;
END
$superduper$`;

/**
 * A PostgreSQL server through node-postgres. pgvector's `vector` columns come back
 * as number arrays; int8 and numeric stay strings (no silent precision loss).
 *
 * No error on any of its connections, pooled or held, becomes an unhandled
 * 'error' event: each is reported to `health` and fails the query in flight.
 */
export async function connectPostgres(uri: string, options: PostgresOptions = {}): Promise<SqlDriver> {
  const role = options.role ?? 'client';
  const queryTimeoutMs = options.queryTimeoutMs ?? (role === 'sidecar' ? 60_000 : undefined);
  const stallTimeoutMs = options.stallTimeoutMs ?? 10_000;
  const applicationName = options.applicationName ?? (role === 'sidecar' ? 'superduper sidecar' : 'superduper');
  const health = new ConnectionHealth(describeTarget(uri), role === 'sidecar' ? options.logger : undefined);

  let vectorOids = new Set<number>();
  const parseVector = (value: string): number[] => pgvector.fromSql(value) as number[];
  const types = {
    getTypeParser(oid: number, format?: 'text' | 'binary') {
      if (vectorOids.has(oid)) return parseVector;
      return pg.types.getTypeParser(oid, format as 'text');
    },
  };
  const connectionConfig: pg.ClientConfig = {
    connectionString: uri,
    application_name: applicationName,
    types: types as pg.CustomTypesConfig,
    // A connection attempt to a server that does not answer (a stalled network,
    // a failover in progress) fails instead of waiting for the OS's TCP timeout.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // Finds a peer that vanished without a word (its host gone) on idle connections.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
  const pool = new pg.Pool({ ...connectionConfig, max: options.maxConnections ?? 10 });
  const clients = new Set<pg.PoolClient>();
  pool.on('connect', (client) => {
    clients.add(client);
    // Held connections (a sidecar's sleep lock, its request connection, a
    // user's transaction) have no pool listener while checked out: an error on
    // one must not end the process. Its query in flight fails anyway.
    client.on('error', (error) => health.lost(error));
  });
  const configured = new WeakSet<pg.PoolClient>();
  pool.on('remove', (client) => clients.delete(client));
  // An idle connection lost (a server restart) is dropped by the pool and
  // replaced on the next checkout.
  pool.on('error', (error) => health.lost(error));
  // A sidecar that lost one connection suspects the others: an idle one may be
  // half-open (silent for ever), and would stall the first statement to use it
  // after the outage, as a second outage. Each is made again.
  if (role === 'sidecar') health.on('down', () => resetConnections(new Error('Connection terminated: another connection to the database was lost')));

  let typesLoaded = false;
  const refreshTypes = async () => {
    const result = await pool.query<{ oid: number }>(
      `SELECT t.oid::int AS oid FROM pg_catalog.pg_type t WHERE t.typname = 'vector'
         AND t.typnamespace = (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'vector')`,
    );
    vectorOids = new Set(result.rows.map((row) => row.oid));
    typesLoaded = true;
  };
  if (!options.lazy) {
    try {
      await refreshTypes();
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
  }
  // A lazily opened database reads pgvector's type before its first query.
  const ready = async () => {
    if (!typesLoaded) await refreshTypes();
  };

  let listener: ListenConnection | undefined;
  const resetConnections = (error: Error) => {
    for (const client of clients) destroyClient(client, error);
    listener?.reset(error);
  };
  const listenConnection = () => {
    listener ??= new ListenConnection({ ...connectionConfig, application_name: `${applicationName} listener` }, health, {
      checkMs: Math.max(1000, stallTimeoutMs),
      stallMs: stallTimeoutMs,
    });
    return listener;
  };

  /** Runs one query on a checked-out client, with the role's deadline. */
  const run = <Row>(client: pg.PoolClient, text: string, values: readonly unknown[] | undefined, timeoutMs: number | undefined) =>
    withDeadline(client, client.query(text, values as unknown[]) as unknown as Promise<QueryResult<Row>>, timeoutMs);
  /** A pooled connection (made now if need be); a failure to connect is reported to health. */
  const checkout = async () => {
    let client: pg.PoolClient | undefined;
    const startedAt = Date.now();
    try {
      await ready();
      client = await pool.connect();
      if (role === 'sidecar' && !configured.has(client)) {
        await withDeadline(client, client.query(SIDECAR_SESSION), stallTimeoutMs);
        configured.add(client);
      }
      return client;
    } catch (thrown) {
      const error = connectError(thrown, CONNECT_TIMEOUT_MS);
      client?.release(true);
      // A timed-out attempt began a whole timeout ago, maybe before this
      // checkout: the pool hands a waiting checkout the failure of an attempt
      // already under way (one begun during an outage, failing just after it).
      const timedOut = error !== thrown;
      health.lost(error, timedOut ? Math.min(startedAt, Date.now() - CONNECT_TIMEOUT_MS) : startedAt);
      throw error;
    }
  };
  const brokenBy = (error: unknown) => classifyDatabaseError(error) === 'connection';
  const queryable = (client: pg.PoolClient): Queryable => ({
    query: (text, values, queryOptions) => run(client, text, values, queryOptions?.timeoutMs ?? queryTimeoutMs) as never,
  });

  return {
    uri,
    health,
    async query<Row>(text: string, values?: readonly unknown[], queryOptions?: QueryOptions): Promise<QueryResult<Row>> {
      const client = await checkout();
      const startedAt = Date.now();
      let broken = false;
      try {
        return await run<Row>(client, text, values, queryOptions?.timeoutMs ?? queryTimeoutMs);
      } catch (error) {
        broken = brokenBy(error);
        if (broken) health.lost(error, startedAt);
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async acquire(): Promise<Connection> {
      const client = await checkout();
      return {
        ...queryable(client),
        release: (broken?: boolean) => client.release(broken),
      };
    },
    async withConnection<T>(fn: (connection: Queryable) => Promise<T>): Promise<T> {
      const client = await checkout();
      const startedAt = Date.now();
      let broken = false;
      try {
        return await fn(queryable(client));
      } catch (error) {
        // A connection that failed mid-use may hold session state (a lock): drop it.
        broken = true;
        health.lost(error, startedAt);
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await checkout();
      const startedAt = Date.now();
      const tx = queryable(client);
      let broken = false;
      try {
        await tx.query('BEGIN');
        const result = await fn(tx);
        await tx.query('COMMIT');
        return result;
      } catch (error) {
        broken = brokenBy(error);
        if (broken) health.lost(error, startedAt);
        if (!broken) await tx.query('ROLLBACK').catch(() => (broken = true));
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async listen(channel, onNotify, onReconnect, onLost) {
      return listenConnection().listen({ channel, onNotify, onReconnect, onLost });
    },
    resetConnections,
    vectorArrayParam(vectors) {
      const [oid] = vectorOids;
      // Binary when the vector type is known (a Buffer parameter is sent in binary
      // format by node-postgres); text otherwise.
      return oid === undefined ? vectors.map((v) => pgvector.toSql(Array.from(v))) : encodeVectorArray(vectors, oid);
    },
    refreshTypes,
    async close() {
      await listener?.close();
      // Connections stuck on a server that does not answer would keep end() waiting.
      let timer: NodeJS.Timeout | undefined;
      const ended = pool.end().catch(() => {});
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          for (const client of clients) destroyClient(client);
          resolve();
        }, 5000);
        timer.unref();
      });
      await Promise.race([ended, late]);
      clearTimeout(timer);
    },
  };
}

/** host:port/database of a connection string, for log lines (never the password). */
function describeTarget(uri: string): string {
  try {
    const url = new URL(uri);
    return `${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname || '/'}`;
  } catch {
    return 'the database';
  }
}
