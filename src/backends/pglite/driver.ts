import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { lockDataDir } from './data-dir-lock.js';
import { guardExit } from './exit-guard.js';
import type { SuperduperError } from '../../errors.js';
import { SharedSession } from './session.js';
import { DEFAULT_SETTINGS, SessionSettings } from './session-settings.js';
import { modelCallOf, type ModelCall, rerunnable } from './model-call-error.js';
import { runAnsweringModelCalls } from './model-call-rerun.js';
import { resumeWaitSql, WAIT_RERUN_MS, waitResumeOf } from './wait-rerun.js';
import { ConnectionHealth } from '../connection-health.js';
import type { Backend } from '../backend.js';
import type { Connection, SqlDriver, Queryable, QueryResult } from '../postgres/sql-driver.js';
import { embeddedBackend } from './backend.js';

export interface EmbeddedOptions {
  /** Folder of the database files; omitted: in memory, gone when closed. */
  dataDir?: string;
  /** A database to start from (a dump from `dump()`), for fast copies in tests. */
  loadDataDir?: Blob;
}

/** Computes a model call raised by SQL (SDM01) and stores its answer (superduper._store_answer). */
export type ModelCallHost = (call: ModelCall, db: Queryable) => Promise<void>;

/**
 * PostgreSQL in this process: PGlite (PostgreSQL compiled to WebAssembly) with
 * pgvector, running the same SQL layer as a server. What differs, and how this
 * adapter makes up for it:
 * - one session for everyone (SharedSession): statements queue for it, and a
 *   transaction keeps it until it ends;
 * - no dblink, so SQL cannot wait for a sidecar: a model call not yet answered
 *   raises SDM01; the host (the Superduper object) computes it, stores the
 *   answer and runs the statement again (in a transaction, from a savepoint);
 * - NOTIFY reaches only this session: listen() callbacks are fed by PGlite's own
 *   dispatch and by the wire server (embedded/wire-server.ts).
 */
export class EmbeddedDatabase implements SqlDriver {
  /** Set while a wire server serves this database (see serve()). */
  uri: string | undefined;
  readonly session = new SharedSession();
  /** In this process: never lost. */
  readonly health = new ConnectionHealth('embedded', undefined);
  /** The settings the one session wears: those of whoever has the turn (see session-settings.ts). */
  readonly settings: SessionSettings;
  readonly pglite: PGlite;
  #hosts: ModelCallHost[] = [];
  #parsers: Record<number, (value: string) => unknown> = {};
  readonly #listeners = new Map<string, Set<(payload: string) => void>>();
  readonly #pgliteUnlisten = new Map<string, () => Promise<void>>();
  #onClose: Array<() => Promise<void>> = [];
  #unlock: (() => Promise<void>) | undefined;
  #closing: Promise<void> | undefined;
  #onStopped: Array<(stopped: SuperduperError) => void> = [];
  readonly #exit: { stopped(): SuperduperError | undefined };

  private constructor(pglite: PGlite) {
    this.pglite = pglite;
    this.#exit = guardExit(pglite, (stopped) => {
      for (const fn of this.#onStopped) fn(stopped);
    });
    this.settings = new SessionSettings((sql, values) => pglite.query(sql, values));
  }

  /** A turn of this process on the session, with the default settings (a client's may be worn). */
  #turn<T>(fn: () => Promise<T>): Promise<T> {
    if (this.session.holds()) return fn();
    return this.session.run(async () => {
      await this.settings.wear(DEFAULT_SETTINGS);
      return fn();
    });
  }

  static async open(options: EmbeddedOptions = {}): Promise<EmbeddedDatabase> {
    const unlock = options.dataDir ? await lockDataDir(options.dataDir) : undefined;
    try {
      const pglite = await PGlite.create({
        ...(options.dataDir ? { dataDir: options.dataDir } : {}),
        ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
        extensions: { vector },
      });
      const db = new EmbeddedDatabase(pglite);
      db.#unlock = unlock;
      await db.refreshTypes();
      return db;
    } catch (error) {
      await unlock?.();
      throw error;
    }
  }

  /** The PostgreSQL backend with the embedded database's capabilities, on this driver (closing it stays the caller's). */
  backend(): Backend {
    return embeddedBackend(this, { ownsDriver: false });
  }

  /**
   * Who answers model calls from SQL: the Superduper objects open on this
   * database, the latest first (each adds itself, and removes itself on close).
   */
  addModelCallHost(host: ModelCallHost): void {
    this.#hosts.push(host);
  }

  removeModelCallHost(host: ModelCallHost): void {
    this.#hosts = this.#hosts.filter((h) => h !== host);
  }

  get modelCallHost(): ModelCallHost | undefined {
    return this.#hosts.at(-1);
  }

  async query<Row>(text: string, values?: readonly unknown[]): Promise<QueryResult<Row>> {
    const run = () => this.#answering(text, () => this.#execute<Row>(text, values));
    // Inside a transaction (the caller holds the session) nobody else can run:
    // a wait_for there gets its SDW01, which says so.
    if (this.session.holds()) return run();
    for (let resume: string | undefined; ; ) {
      try {
        return await this.#turn(async () => {
          if (resume === undefined) return run();
          await this.pglite.query(resumeWaitSql(resume));
          try {
            return await run();
          } finally {
            await this.pglite.query(resumeWaitSql(''));
          }
        });
      } catch (error) {
        resume = waitResumeOf(error);
        if (resume === undefined || !rerunnable(text)) throw error;
        // Out of the session meanwhile, so that the sidecar in this process computes.
        await new Promise((resolve) => setTimeout(resolve, WAIT_RERUN_MS));
      }
    }
  }

  async acquire(): Promise<Connection> {
    const held = await this.session.hold();
    await held.run(() => this.settings.wear(DEFAULT_SETTINGS));
    return {
      query: (text, values) => held.run(() => this.#answering(text, () => this.#execute(text, values))) as never,
      release: () => held.release(),
    };
  }

  withConnection<T>(fn: (connection: Queryable) => Promise<T>): Promise<T> {
    return this.#turn(() => fn(this));
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#turn(async () => {
      await this.pglite.exec('BEGIN');
      try {
        const result = await fn(this);
        await this.pglite.exec('COMMIT');
        return result;
      } catch (error) {
        await this.pglite.exec('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  }

  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    let callbacks = this.#listeners.get(channel);
    if (!callbacks) {
      callbacks = new Set();
      this.#listeners.set(channel, callbacks);
      // NOTIFYs raised by this process's own statements come through PGlite.
      const unlisten = await this.session.run(() => this.pglite.listen(channel, (payload) => this.notify(channel, payload)));
      this.#pgliteUnlisten.set(channel, unlisten);
    }
    callbacks.add(onNotify);
    return async () => {
      callbacks.delete(onNotify);
    };
  }

  /** Channels someone in this process listens on (the wire server keeps their NOTIFYs from its clients). */
  listensTo(channel: string): boolean {
    return (this.#listeners.get(channel)?.size ?? 0) > 0;
  }

  /** The channels someone in this process listens on. */
  listenedChannels(): string[] {
    return [...this.#listeners].filter(([, callbacks]) => callbacks.size > 0).map(([channel]) => channel);
  }

  /** Delivers a notification to this process's listeners. */
  notify(channel: string, payload: string): void {
    for (const callback of this.#listeners.get(channel) ?? []) {
      try {
        callback(payload);
      } catch {
        // A listener's failure is its own; the others still hear.
      }
    }
  }

  /** Nothing to reset: the database is in this process. */
  resetConnections(): void {}

  vectorArrayParam(vectors: readonly ArrayLike<number>[]): unknown {
    // An array literal of vector literals: PGlite would not quote them itself.
    return `{${vectors.map((v) => `"[${Array.from(v).join(',')}]"`).join(',')}}`;
  }

  async refreshTypes(): Promise<void> {
    const result = await this.session.run(() =>
      this.pglite.query<{ oid: number }>(
        `SELECT t.oid::int AS oid FROM pg_catalog.pg_type t WHERE t.typname = 'vector'
           AND t.typnamespace = (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'vector')`,
      ),
    );
    // As node-postgres gives them (so both backends give the same rows): int8 and
    // numeric as strings, vectors as number arrays.
    const parsers: Record<number, (value: string) => unknown> = { 20: (value) => value, 1700: (value) => value };
    for (const { oid } of result.rows) parsers[oid] = (value) => JSON.parse(value) as number[];
    this.#parsers = parsers;
  }

  /** Whether statements can still run: not closing or closed, not stopped. */
  get usable(): boolean {
    return this.#closing === undefined && this.stopped === undefined;
  }

  /** Why the database stopped, when PostgreSQL inside PGlite exited (see exit-guard.ts); every call fails with it. */
  get stopped(): SuperduperError | undefined {
    return this.#exit.stopped();
  }

  /** Runs fn if PostgreSQL inside PGlite exits: the wire server ends its clients, `serve` exits. */
  onStopped(fn: (stopped: SuperduperError) => void): void {
    this.#onStopped.push(fn);
  }

  /** Runs fn when the database closes (the wire server stops first). */
  onClose(fn: () => Promise<void>): void {
    this.#onClose.push(fn);
  }

  /** The database as a tarball, to open copies of it (loadDataDir). */
  dump(): Promise<Blob> {
    return this.session.run(async () => (await this.pglite.dumpDataDir('none')) as Blob);
  }

  /** Closes the database (once: later calls wait for the first) and frees its folder. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    try {
      const hooks = this.#onClose;
      this.#onClose = [];
      for (const hook of hooks) await hook();
      for (const unlisten of this.#pgliteUnlisten.values()) await this.session.run(unlisten).catch(() => {});
      this.#pgliteUnlisten.clear();
      await this.session.run(() => this.pglite.close());
    } finally {
      await this.#unlock?.();
    }
  }

  /** One statement (with values) or a script of several (without), as node-postgres would run them. */
  async #execute<Row>(text: string, values?: readonly unknown[]): Promise<QueryResult<Row>> {
    const options = { parsers: this.#parsers };
    if (values === undefined) {
      const results = await this.pglite.exec(text, options);
      const last = results.at(-1);
      return { rows: (last?.rows ?? []) as Row[], rowCount: last?.affectedRows ?? null };
    }
    const result = await this.pglite.query<Row>(text, [...values], options);
    return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
  }

  /** Runs a statement, answering the model calls it raises (see model-call-rerun.ts). */
  #answering<T>(text: string, run: () => Promise<T>): Promise<T> {
    const host = this.modelCallHost;
    if (!host) return run();
    return runAnsweringModelCalls<{ value?: T; error?: unknown }>({
      sql: text,
      inBlock: this.pglite.isInTransaction(),
      answerable: true,
      exec: (sql) => this.pglite.exec(sql),
      run: async () => {
        try {
          return { outcome: { value: await run() }, call: undefined, failed: false, leftBlockOpen: false };
        } catch (error) {
          return { outcome: { error }, call: modelCallOf(error), failed: true, leftBlockOpen: false };
        }
      },
      // The host's own failure is the caller's error.
      answer: async (call) => {
        await host(call, this);
        return true;
      },
    }).then((outcome) => {
      if ('error' in outcome) throw outcome.error;
      return outcome.value as T;
    });
  }
}
