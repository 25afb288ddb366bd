import { createHash } from 'node:crypto';
import type { Database, Queryable } from './backends/postgres/sql-driver.js';
import { connectPostgres } from './backends/postgres/driver.js';
import type { ListenerComponent } from './components/listener.js';
import type { ModelComponent, StoredModel } from './components/model.js';
import type { VectorIndexComponent } from './components/vector-index.js';
import { backoffMs } from './backends/connection-health.js';
import { classifyDatabaseError, describeError, SuperduperError } from './errors.js';
import { install, type InstallResult } from './backends/postgres/install.js';
import { defaultLogger, type Logger } from './logger.js';
import type { FunctionModel } from './models/function-runtime.js';
import { ModelCache } from './models/registry.js';
import type { ModelRecord } from './models/types.js';
import type { ModelCall } from './backends/pglite/model-call-error.js';
import { answerModelCalls } from './worker/model-calls.js';
import { Worker, type WorkerOptions } from './worker/worker.js';
import type { Kysely } from 'kysely';
import { createKysely } from './backends/postgres/kysely.js';
import { search, TableQuery, type SearchHit, type SearchOptions } from './backends/postgres/search.js';

export type Component = ModelComponent | ListenerComponent | VectorIndexComponent;

/** What superduper.apply() reports per component. */
export interface ApplyResult {
  type: string;
  name: string;
  action: 'created' | 'unchanged' | 'updated' | 'rebuilding' | 'removed';
  version?: number;
  backfill?: number;
  [key: string]: unknown;
}

/** A row of the superduper.status view. */
export interface ListenerStatus {
  listener: string;
  version: number;
  state: 'current' | 'building' | 'frozen';
  model: string;
  source: string;
  outputs: string;
  pending: number;
  in_flight: number;
  failed: number;
  done: number | null;
  /** Age of the oldest change not yet computed, in seconds. */
  lag_seconds: number;
  backfill_total: number;
  backfill_remaining: number;
  note: string | null;
  /** Failed rows whose output from an earlier value was removed (see superduper.failures). */
  withdrawn: number;
}

export interface FailureRow {
  listener: string;
  version: number;
  primary_key: string[];
  attempts: number;
  error: string;
  failed_at: Date;
  /** The row had an output from an earlier value, removed when this value failed. */
  withdrawn: boolean;
}

/** What superduper.wait_for() found: the failures among the changes waited for (none: every output is current). */
export interface WaitResult {
  failed: Array<{ listener: string; primary_key: string[]; error: string; failed_at: Date }>;
}

export interface ConnectOptions {
  logger?: Logger;
  /** Pool size for a connection string (default 10). */
  maxConnections?: number;
}

/**
 * Connects to a database with superduper's SQL layer (see `install`).
 *
 * @example
 * const db = await connect('postgres://localhost/app');
 * await db.install();
 * await db.apply(listener({ name: 'docs_embedding', model: 'minilm', table: 'docs', keys: ['body'] }));
 * await db.start(); // a sidecar in this process
 */
export async function connect(target: string | Database, options: ConnectOptions = {}): Promise<Superduper> {
  const database = typeof target === 'string' ? await openTarget(target, options) : target;
  return new Superduper(database, options.logger ?? defaultLogger(), typeof target === 'string');
}

/**
 * A connection string, or the embedded database: "pglite:<folder>" keeps its
 * files in that folder, "pglite:memory" keeps nothing.
 */
async function openTarget(target: string, options: ConnectOptions): Promise<Database> {
  if (!target.startsWith('pglite:')) return connectPostgres(target, { maxConnections: options.maxConnections });
  // Imported only here: PostgreSQL users never load the WebAssembly build.
  const { EmbeddedDatabase } = await import('./backends/pglite/driver.js');
  const where = target.slice('pglite:'.length);
  return EmbeddedDatabase.open(where === 'memory' ? {} : { dataDir: where });
}

export class Superduper {
  readonly db: Database;
  readonly logger: Logger;
  /** Models loaded in this process (shared by its sidecars); function models registered here. */
  readonly models: ModelCache;
  readonly #ownsDatabase: boolean;
  readonly #workers = new Set<Worker>();
  readonly #sidecarDatabases = new Map<Worker, Database>();
  #kysely: Kysely<any> | undefined;

  constructor(db: Database, logger: Logger, ownsDatabase = false) {
    this.db = db;
    this.logger = logger;
    this.#ownsDatabase = ownsDatabase;
    this.models = new ModelCache({ fetchArtifact: (sha) => this.#fetchArtifact(sha) }, logger);
    // The embedded database cannot reach a sidecar from SQL: this process answers
    // the model calls its statements make (see backends/pglite.ts).
    if (isEmbedded(db)) db.addModelCallHost(this.#modelCallHost);
  }

  readonly #modelCallHost = (call: ModelCall, session: Queryable) => this.#answerModelCall(call, session);

  /** A Kysely query builder on this database (for typed queries mixing data and outputs). */
  get kysely(): Kysely<any> {
    this.#kysely ??= createKysely(this.db);
    return this.#kysely;
  }

  /**
   * Vector search through superduper.like(): the k rows nearest to a text query
   * (embedded by a sidecar, or from the cache) or to a vector.
   */
  search(index: string, query: string | ArrayLike<number>, options: SearchOptions = {}): Promise<SearchHit[]> {
    return search(this.db, index, query, options);
  }

  /** A table, for searches composed with Kysely: db.table('docs').like({ body: 'text' }, { index }). */
  table(name: string, options: { schema?: string } = {}): TableQuery {
    return new TableQuery(this.kysely, this.db, name, options.schema);
  }

  /** A model's prediction for one input, computed by a sidecar (superduper.predict). */
  async predict(model: string, input: unknown): Promise<unknown> {
    const result = await this.db.query<{ output: unknown }>('SELECT superduper.predict($1, $2::jsonb) AS output', [model, JSON.stringify(input)]);
    return result.rows[0]?.output;
  }

  /** Installs or upgrades the SQL layer; see install.ts. */
  install(): Promise<InstallResult> {
    return install(this.db);
  }

  /**
   * Applies components (models, listeners) in one transaction. Re-applying an
   * unchanged component is a no-op; a changed listener is updated in place or
   * rebuilt as a new version (see docs/sql.md).
   */
  async apply(...components: Array<Component | Record<string, unknown>>): Promise<ApplyResult[]> {
    const specs: Array<Record<string, unknown>> = [];
    const uploads: StoredModel[] = [];
    const seen = new Set<unknown>();
    const add = (component: Component | Record<string, unknown>) => {
      if (seen.has(component)) return;
      seen.add(component);
      if (isListener(component)) {
        if (typeof component.model !== 'string') add(component.model);
        specs.push(component.spec);
      } else if (isFunctionModel(component)) {
        this.models.functions.register(component);
        specs.push(component.spec);
      } else if (isStoredModel(component)) {
        uploads.push(component);
        specs.push(component.spec);
      } else if ((component as VectorIndexComponent).kind === 'vector_index') {
        specs.push((component as VectorIndexComponent).spec);
      } else {
        specs.push(component as Record<string, unknown>);
      }
    };
    components.forEach(add);

    const results = await this.db.transaction(async (tx) => {
      for (const model of uploads) {
        const index = specs.indexOf(model.spec);
        specs[index] = await storeModelFiles(tx, model);
      }
      const result = await tx.query<{ result: ApplyResult[] }>('SELECT superduper.apply($1::jsonb) AS result', [JSON.stringify(specs)]);
      return result.rows[0]?.result ?? [];
    });
    for (const worker of this.#workers) worker.refresh();
    return results;
  }

  /** Removes a listener (or a model no listener uses). */
  async remove(name: string, options: { keepOutputs?: boolean; cascade?: boolean } = {}): Promise<ApplyResult[]> {
    const result = await this.db.query<{ result: ApplyResult[] }>('SELECT superduper.remove($1, $2, $3) AS result', [
      name,
      options.keepOutputs ?? false,
      options.cascade ?? false,
    ]);
    return result.rows[0]?.result ?? [];
  }

  /** The superduper.status view. With countDone false, `done` is null and the call is cheap to poll. */
  async status(options: { countDone?: boolean } = {}): Promise<ListenerStatus[]> {
    const result = await this.db.query<ListenerStatus>(
      `SELECT listener, version, state, model, source, outputs, pending::int, in_flight::int, failed::int,
              done::int, extract(epoch FROM lag)::float8 AS lag_seconds, backfill_total::int,
              backfill_remaining::int, note, withdrawn::int
       FROM superduper._status($1)`,
      [options.countDone ?? true],
    );
    return result.rows;
  }

  async failures(listener?: string): Promise<FailureRow[]> {
    const result = await this.db.query<FailureRow>(
      `SELECT listener, version, ARRAY(SELECT jsonb_array_elements_text(primary_key)) AS primary_key,
              attempts, error, failed_at, withdrawn
       FROM superduper.failures WHERE $1::text IS NULL OR listener = $1 ORDER BY listener, failed_at`,
      [listener ?? null],
    );
    return result.rows;
  }

  /** Queues a listener's failed rows again; returns how many. */
  async retry(listener: string): Promise<number> {
    const result = await this.db.query<{ count: string }>('SELECT superduper.retry($1) AS count', [listener]);
    return Number(result.rows[0]?.count ?? 0);
  }

  /** The qualified name of a listener's outputs table, e.g. superduper.out_docs_embedding. */
  async outputsTable(listener: string): Promise<string> {
    const result = await this.db.query<{ table: string }>('SELECT superduper.outputs($1)::text AS table', [listener]);
    return result.rows[0]!.table;
  }

  /**
   * Starts a sidecar in this process. Besides every model stored in the
   * database, it runs the function models applied through this object.
   *
   * On a PostgreSQL server it has connections of its own (application_name
   * "superduper sidecar"), which outlive the database's restarts and failovers
   * (see docs/operations.md); it starts even while the database is unreachable,
   * and throws only for errors no retry can fix. `worker.done` rejects if such
   * an error ends it later.
   */
  async start(options: Partial<WorkerOptions> = {}): Promise<Worker> {
    const connections = await this.#sidecarConnections(options);
    const worker = new Worker(connections, this.models, { logger: this.logger, ...options });
    try {
      await worker.start();
    } catch (error) {
      if (connections !== this.db) await connections.close();
      throw error;
    }
    this.#workers.add(worker);
    if (connections !== this.db) this.#sidecarDatabases.set(worker, connections);
    return worker;
  }

  /** The connections a sidecar uses: its own pool on a server, the shared session in process. */
  async #sidecarConnections(options: Partial<WorkerOptions>): Promise<Database> {
    if (this.db.kind !== 'postgres' || !this.db.uri || !this.#ownsDatabase) return this.db;
    return connectPostgres(this.db.uri, {
      role: 'sidecar',
      lazy: true,
      logger: this.logger,
      stallTimeoutMs: options.stallTimeoutMs,
      maxConnections: Math.max(4, (options.concurrency ?? 2) + 4),
    });
  }

  /**
   * Read your writes: resolves once every change committed before this call, to
   * the listener's table (default: every listener's), has its output or has
   * failed for good, with the failures among them (superduper.wait_for). A
   * listener reading another's outputs is waited for through its chain. Rejects
   * with code SDT01 after timeoutMs (default 30 s), saying what is left. A lost
   * connection meanwhile is retried: the wait goes on from a later moment, which
   * still covers every change made before the call.
   */
  async waitFor(listener?: string, options: { timeoutMs?: number } = {}): Promise<WaitResult> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.db.query<WaitResult['failed'][number] & { primary_key: string[] }>(
          `SELECT listener, ARRAY(SELECT jsonb_array_elements_text(primary_key)) AS primary_key, error, failed_at
           FROM superduper.wait_for($1, make_interval(secs => $2))`,
          [listener ?? null, Math.max(0, deadline - Date.now()) / 1000],
        );
        return { failed: result.rows };
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === 'SDT01') {
          throw new SuperduperError((error as Error).message, { hint: (error as { hint?: string }).hint, code, cause: error });
        }
        if (classifyDatabaseError(error) !== 'connection' || Date.now() >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
      }
    }
  }

  /**
   * Resolves when the given listeners (default: all) have nothing pending or in
   * flight and no version being rebuilt. Rejects after timeoutMs. Connections
   * lost meanwhile (a restart) are retried until then.
   */
  async waitUntilIdle(
    options: {
      listeners?: string[];
      timeoutMs?: number;
      pollMs?: number;
      /** Count the rows of each outputs table on every poll (for progress bars). Default false. */
      countDone?: boolean;
      onProgress?: (status: ListenerStatus[]) => void;
    } = {},
  ): Promise<ListenerStatus[]> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    let lost = 0;
    for (;;) {
      let all: ListenerStatus[];
      try {
        all = await this.status({ countDone: options.countDone ?? false });
      } catch (error) {
        if (classifyDatabaseError(error) !== 'connection' || Date.now() > deadline) throw error;
        if (lost++ === 0) this.logger.warn({ error: describeError(error) }, 'lost the connection to the database; waiting for it');
        await new Promise((resolve) => setTimeout(resolve, backoffMs(lost)));
        continue;
      }
      if (lost > 0) this.logger.info('reconnected to the database');
      lost = 0;
      const status = all.filter((s) => !options.listeners || options.listeners.includes(s.listener));
      options.onProgress?.(status);
      const busy = status.filter((s) => s.pending > 0 || s.in_flight > 0 || s.state === 'building');
      if (busy.length === 0) return status;
      if (Date.now() > deadline) {
        throw new SuperduperError(
          `timed out waiting for listener(s) ${busy.map((s) => `${s.listener} (pending ${s.pending}, in flight ${s.in_flight})`).join(', ')}`,
          { hint: 'Is a sidecar running? Start one with "superduper start <uri>" or db.start().' },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 50));
    }
  }

  /** Stops this object's sidecars (gracefully), unloads models, closes the connection if it opened it. */
  async close(): Promise<void> {
    await Promise.all([...this.#workers].map((worker) => worker.stop()));
    this.#workers.clear();
    await Promise.all([...this.#sidecarDatabases.values()].map((db) => db.close()));
    this.#sidecarDatabases.clear();
    await this.models.close();
    await this.#kysely?.destroy();
    // Model calls from SQL are no longer answered by this object.
    if (isEmbedded(this.db)) this.db.removeModelCallHost(this.#modelCallHost);
    if (this.#ownsDatabase) await this.db.close();
  }

  async #answerModelCall(call: ModelCall, session: Queryable): Promise<void> {
    const found = await session.query<ModelRecord>(
      'SELECT name, runtime, output, config, artifact, spec_hash FROM superduper._models WHERE name = $1',
      [call.model],
    );
    const model = found.rows[0];
    if (!model) return; // removed meanwhile: the statement's next run says so
    const [answer] = await answerModelCalls(this.models, model, [call.input]);
    await session.query('SELECT superduper._store_answer($1, $2, $3::jsonb, $4::jsonb, $5)', [
      call.model,
      call.kind,
      JSON.stringify(call.input),
      answer?.ok ? JSON.stringify(answer.value) : null,
      answer?.ok ? null : (answer?.error ?? 'no answer'),
    ]);
  }

  async #fetchArtifact(sha256: string): Promise<Uint8Array> {
    const result = await this.db.query<{ bytes: Buffer }>('SELECT bytes FROM superduper._artifacts WHERE sha256 = $1', [sha256]);
    const row = result.rows[0];
    if (!row) throw new SuperduperError(`artifact ${sha256} is not stored in this database`);
    return new Uint8Array(row.bytes.buffer, row.bytes.byteOffset, row.bytes.byteLength);
  }
}

async function storeModelFiles(tx: Queryable, model: StoredModel): Promise<Record<string, unknown>> {
  // Files are stored by content hash; one already there is not sent again.
  const put = async (bytes: Uint8Array) => {
    const sha = createHash('sha256').update(bytes).digest('hex');
    const stored = await tx.query('SELECT 1 FROM superduper._artifacts WHERE sha256 = $1', [sha]);
    if (stored.rows.length > 0) return sha;
    const result = await tx.query<{ sha: string }>('SELECT superduper.put_artifact($1) AS sha', [Buffer.from(bytes)]);
    return result.rows[0]!.sha;
  };
  const spec = { ...model.spec };
  if (model.artifact) spec.artifact = await put(await model.artifact());
  if (model.files) {
    const files: Record<string, string> = {};
    for (const [path, load] of Object.entries(model.files)) files[path] = await put(await load());
    spec.config = { ...(spec.config as Record<string, unknown>), files };
  }
  return spec;
}

type ModelCallHost = (call: ModelCall, session: Queryable) => Promise<void>;

function isEmbedded(db: Database): db is Database & { addModelCallHost(host: ModelCallHost): void; removeModelCallHost(host: ModelCallHost): void } {
  return db.kind === 'pglite' && typeof (db as { addModelCallHost?: unknown }).addModelCallHost === 'function';
}

function isListener(value: unknown): value is ListenerComponent {
  return (value as ListenerComponent)?.kind === 'listener';
}

function isFunctionModel(value: unknown): value is FunctionModel {
  return (value as FunctionModel)?.kind === 'model' && (value as FunctionModel).runtime === 'function';
}

function isStoredModel(value: unknown): value is StoredModel {
  return (value as StoredModel)?.kind === 'model' && (value as FunctionModel).runtime !== 'function';
}
