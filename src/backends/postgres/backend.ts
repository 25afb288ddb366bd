import type { Kysely } from 'kysely';
import { describeError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { Backend, Capabilities, SidecarConnectionOptions } from '../backend.js';
import { connectPostgres } from './driver.js';
import { installLayer } from './install.js';
import { postgresModelCalls, type HostModelCalls } from './model-calls.js';
import { postgresQueue } from './queue.js';
import { postgresRag } from './rag.js';
import { postgresRegistry } from './registry.js';
import { createKysely } from './kysely.js';
import { postgresSearch, TableQuery } from './search.js';
import { postgresSidecars } from './sidecars.js';
import { postgresTraining } from './training-control.js';
import type { SqlDriver } from './sql-driver.js';
import { postgresWakeUp } from './wake-up.js';

/** A PostgreSQL server: its triggers wake sidecars across sessions, dblink carries model calls from SQL. */
export const SERVER_CAPABILITIES: Capabilities = {
  sharedSession: false,
  crossSessionNotify: true,
  modelCallsFromQueries: 'sidecars',
  defaultReconcileMs: 2000,
};

export interface PostgresBackendOptions {
  name: string;
  capabilities: Capabilities;
  /** A driver that hosts its database in this process answers its model calls through this. */
  hostModelCalls?: HostModelCalls;
  /** Connections of its own for a sidecar; absent: sidecars share this backend's. */
  sidecarDriver?: (options: SidecarConnectionOptions) => Promise<SqlDriver>;
  /** Closes the driver with the backend (false: the caller owns it). Default true. */
  ownsDriver?: boolean;
}

/**
 * superduper on a PostgreSQL database: every SQL statement the TypeScript side
 * runs is in this folder, one file per part of the Backend interface. The
 * embedded PGlite (../pglite/) is this same backend on another driver.
 */
export class PostgresBackend implements Backend {
  readonly name: string;
  readonly capabilities: Capabilities;
  readonly sql: SqlDriver;
  readonly registry;
  readonly queue;
  readonly sidecars;
  readonly wakeUp;
  readonly modelCalls;
  readonly search;
  readonly rag;
  readonly training;
  readonly #options: PostgresBackendOptions;
  #kysely: Kysely<any> | undefined;

  constructor(driver: SqlDriver, options: PostgresBackendOptions) {
    this.sql = driver;
    this.name = options.name;
    this.capabilities = options.capabilities;
    this.#options = options;
    this.registry = postgresRegistry(driver);
    this.queue = postgresQueue(driver);
    this.sidecars = postgresSidecars(driver);
    this.wakeUp = postgresWakeUp(driver);
    this.modelCalls = postgresModelCalls(driver, options.hostModelCalls);
    this.search = postgresSearch(driver);
    this.rag = postgresRag(driver);
    this.training = postgresTraining(driver);
  }

  get uri(): string | undefined {
    return this.sql.uri;
  }

  get health() {
    return this.sql.health;
  }

  install() {
    return installLayer(this.sql, { dblinkExpected: this.capabilities.modelCallsFromQueries === 'sidecars' });
  }

  async installed(): Promise<boolean> {
    const result = await this.sql.query<{ ok: boolean }>(`SELECT to_regclass('superduper._listeners') IS NOT NULL AS ok`, undefined, { timeoutMs: 10_000 });
    return result.rows[0]?.ok ?? false;
  }

  missesOwnObject(error: unknown): boolean {
    // invalid_schema_name, undefined_table, undefined_function, naming superduper's.
    const code = (error as { code?: string } | undefined)?.code ?? '';
    return ['3F000', '42P01', '42883'].includes(code) && /superduper/.test(describeError(error));
  }

  async forSidecar(options: SidecarConnectionOptions): Promise<Backend> {
    if (!this.#options.sidecarDriver) return this;
    const driver = await this.#options.sidecarDriver(options);
    return new PostgresBackend(driver, { ...this.#options, sidecarDriver: undefined, ownsDriver: true });
  }

  /** A Kysely query builder on this database, made on first use. */
  get kysely(): Kysely<any> {
    this.#kysely ??= createKysely(this.sql);
    return this.#kysely;
  }

  /** A table, for searches composed with Kysely (see search.ts). */
  table(name: string, schema?: string): TableQuery {
    return new TableQuery(this.kysely, this.sql, this.search.vectorType, name, schema);
  }

  resetConnections(error: Error): void {
    this.sql.resetConnections(error);
  }

  async close(): Promise<void> {
    await this.#kysely?.destroy();
    if (this.#options.ownsDriver ?? true) await this.sql.close();
  }
}

/**
 * A PostgreSQL server by connection string. Its sidecars get pools of their own
 * (application_name "superduper sidecar"), with deadlines on every query.
 */
export async function connectPostgresBackend(uri: string, options: { maxConnections?: number; logger: Logger }): Promise<PostgresBackend> {
  const driver = await connectPostgres(uri, { maxConnections: options.maxConnections });
  return new PostgresBackend(driver, {
    name: 'postgres',
    capabilities: SERVER_CAPABILITIES,
    sidecarDriver: (sidecar) =>
      connectPostgres(uri, {
        role: 'sidecar',
        lazy: true,
        logger: options.logger,
        stallTimeoutMs: sidecar.stallTimeoutMs,
        maxConnections: Math.max(4, (sidecar.concurrency ?? 2) + 4),
      }),
  });
}
