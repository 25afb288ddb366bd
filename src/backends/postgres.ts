import pg from 'pg';
import pgListen from 'pg-listen';
import pgvector from 'pgvector';
import { encodeVectorArray } from '../worker/vector-binary.js';
import type { Database, Queryable, QueryResult } from './database.js';

// pg-listen is CommonJS with `exports.default`; seen from ESM the function sits
// one level down.
const createSubscriber = ((pgListen as unknown as { default?: typeof pgListen }).default ?? pgListen) as unknown as typeof pgListen.default;

export interface PostgresOptions {
  /** Most connections the pool opens (default 10). */
  maxConnections?: number;
  applicationName?: string;
}

/**
 * A PostgreSQL server through node-postgres. pgvector's `vector` columns come back
 * as number arrays; int8 and numeric stay strings (no silent precision loss).
 */
export async function connectPostgres(uri: string, options: PostgresOptions = {}): Promise<Database> {
  let vectorOids = new Set<number>();
  const parseVector = (value: string): number[] => pgvector.fromSql(value) as number[];
  const types = {
    getTypeParser(oid: number, format?: 'text' | 'binary') {
      if (vectorOids.has(oid)) return parseVector;
      return pg.types.getTypeParser(oid, format as 'text');
    },
  };
  const pool = new pg.Pool({
    connectionString: uri,
    max: options.maxConnections ?? 10,
    application_name: options.applicationName ?? 'superduper',
    types: types as pg.CustomTypesConfig,
  });
  // An idle client losing its connection must not crash the process; the pool
  // replaces it on the next checkout.
  pool.on('error', () => {});

  const refreshTypes = async () => {
    const result = await pool.query<{ oid: number }>(
      `SELECT t.oid::int AS oid FROM pg_catalog.pg_type t WHERE t.typname = 'vector'
         AND t.typnamespace = (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'vector')`,
    );
    vectorOids = new Set(result.rows.map((row) => row.oid));
  };
  await refreshTypes();

  const subscribers: Array<{ close(): Promise<void> }> = [];

  return {
    kind: 'postgres',
    uri,
    query<Row>(text: string, values?: readonly unknown[]): Promise<QueryResult<Row>> {
      return pool.query(text, values as unknown[]) as unknown as Promise<QueryResult<Row>>;
    },
    async acquire() {
      const client = await pool.connect();
      return {
        query: (text: string, values?: readonly unknown[]) => client.query(text, values as unknown[]) as never,
        release: (broken?: boolean) => client.release(broken),
      };
    },
    async withConnection<T>(fn: (connection: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken = false;
      try {
        return await fn({ query: (text, values) => client.query(text, values as unknown[]) as never });
      } catch (error) {
        broken = true;
        throw error;
      } finally {
        // A connection that failed mid-use may hold session state (a lock): drop it.
        client.release(broken);
      }
    },
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          query: (text, values) => client.query(text, values as unknown[]) as never,
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async listen(channel, onNotify, onReconnect) {
      const subscriber = createSubscriber(
        { connectionString: uri, application_name: `${options.applicationName ?? 'superduper'} listener` },
        {
          parse: (payload: string) => payload,
          retryTimeout: 0, // keep trying for as long as it takes
          retryInterval: (attempt: number) => Math.min(250 * 2 ** attempt, 5000),
          paranoidChecking: 10_000,
        },
      );
      subscriber.notifications.on(channel, (payload: unknown) => onNotify(String(payload ?? '')));
      subscriber.events.on('error', () => {});
      subscriber.events.on('connected', () => onReconnect?.());
      await subscriber.connect();
      await subscriber.listenTo(channel);
      subscribers.push(subscriber);
      return async () => {
        await subscriber.close();
      };
    },
    vectorArrayParam(vectors) {
      const [oid] = vectorOids;
      // Binary when the vector type is known (a Buffer parameter is sent in binary
      // format by node-postgres); text otherwise.
      return oid === undefined ? vectors.map((v) => pgvector.toSql(Array.from(v))) : encodeVectorArray(vectors, oid);
    },
    refreshTypes,
    async close() {
      await Promise.all(subscribers.map((s) => s.close().catch(() => {})));
      await pool.end();
    },
  };
}
