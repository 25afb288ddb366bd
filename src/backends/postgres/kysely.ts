import {
  CompiledQuery,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import type { Connection, SqlDriver } from './sql-driver.js';

/**
 * A Kysely dialect over superduper's SqlDriver, so that the same query builder
 * works on a PostgreSQL pool and on the embedded database: PostgreSQL's SQL
 * dialect, our connections.
 */
export function superduperDialect(db: SqlDriver): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DatabaseDriver(db),
    createIntrospector: (kysely) => new PostgresIntrospector(kysely),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  };
}

export function createKysely<Schema = Record<string, Record<string, unknown>>>(db: SqlDriver): Kysely<Schema> {
  return new Kysely<Schema>({ dialect: superduperDialect(db) });
}

class DatabaseDriver implements Driver {
  constructor(private readonly db: SqlDriver) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new KyselyConnection(await this.db.acquire());
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    let begin = 'BEGIN';
    if (settings.isolationLevel) begin += ` ISOLATION LEVEL ${settings.isolationLevel.toUpperCase()}`;
    if (settings.accessMode) begin += ` ${settings.accessMode.toUpperCase()}`;
    await connection.executeQuery(CompiledQuery.raw(begin));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('COMMIT'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('ROLLBACK'));
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as KyselyConnection).release();
  }

  async destroy(): Promise<void> {}
}

class KyselyConnection implements DatabaseConnection {
  constructor(private readonly connection: Connection) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.connection.query<R>(query.sql, query.parameters);
    return {
      rows: result.rows,
      ...(result.rowCount != null && query.query.kind !== 'SelectQueryNode' ? { numAffectedRows: BigInt(result.rowCount) } : {}),
    };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('superduper: streaming queries are not supported through this dialect');
  }

  release(): void {
    this.connection.release();
  }
}
