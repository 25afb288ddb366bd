import type { Kysely } from 'kysely';
import type { Backend, TrainingControl } from './backends/backend.js';
import { backoffMs } from './backends/connection-health.js';
import { openBackend } from './backends/open.js';
import type { TableQuery } from './backends/postgres/search.js';
import type { SqlDriver } from './backends/postgres/sql-driver.js';
import type {
  ApplyResult,
  DeployOptions,
  DeployResult,
  FailureRow,
  InstallResult,
  ListenerStatus,
  PlanResult,
  SearchHit,
  SearchOptions,
  SidecarRow,
  TrainingRunRow,
  WaitResult,
} from './backends/types.js';
import { componentSpecs, type Component } from './components/component.js';
import { classifyDatabaseError, describeError, SuperduperError } from './errors.js';
import { defaultLogger, type Logger } from './logger.js';
import { ModelCache } from './models/registry.js';
import { askRag } from './rag/answer.js';
import { packageApplication, type PackageApplyOptions } from './packages/components.js';
import { exportApplication } from './packages/export.js';
import type { PackageDocument, PackageLimits } from './packages/format.js';
import { readPackage } from './packages/read.js';
import type { RagAnswer, RagOptions } from './rag/types.js';
import { answerModelCalls } from './sidecar/model-calls.js';
import { Sidecar, type SidecarOptions } from './sidecar/sidecar.js';
import { SQLSTATES } from './generated/constants.js';

export type { ApplyResult, Component, FailureRow, ListenerStatus, PlanResult, SidecarRow, WaitResult };

export interface ConnectOptions {
  logger?: Logger;
  /** Pool size for a connection string (default 10). */
  maxConnections?: number;
}

/**
 * Connects to a database with superduper's layer (see `install`): a connection
 * string ("postgres://…", "pglite:<folder>", "pglite:memory"), a driver you
 * opened (an EmbeddedDatabase, any SqlDriver), or a Backend.
 *
 * @example
 * const db = await connect('postgres://localhost/app');
 * await db.install();
 * await db.apply(listener({ name: 'docs_embedding', model: 'minilm', table: 'docs', keys: ['body'] }));
 * await db.start(); // a sidecar in this process
 */
export async function connect(target: string | SqlDriver | Backend, options: ConnectOptions = {}): Promise<Superduper> {
  const logger = options.logger ?? defaultLogger();
  const { backend, owned } = await openBackend(target, { logger, maxConnections: options.maxConnections });
  return new Superduper(backend, logger, owned);
}

export class Superduper {
  readonly backend: Backend;
  readonly logger: Logger;
  /** Models loaded in this process (shared by its sidecars); function models registered here. */
  readonly models: ModelCache;
  readonly #ownsBackend: boolean;
  readonly #sidecars = new Set<Sidecar>();
  readonly #sidecarBackends = new Map<Sidecar, Backend>();
  readonly #unhost: (() => void) | undefined;

  constructor(backend: Backend, logger: Logger, ownsBackend = false) {
    this.backend = backend;
    this.logger = logger;
    this.#ownsBackend = ownsBackend;
    this.models = new ModelCache({ fetchArtifact: (sha) => backend.registry.artifact(sha) }, logger);
    // A database hosted in this process cannot reach a sidecar from its queries:
    // this object answers the model calls they make.
    if (backend.capabilities.modelCallsFromQueries === 'host') {
      this.#unhost = backend.modelCalls.host((model, inputs) => answerModelCalls(this.models, model, inputs));
    }
  }

  /** The SQL connection, for your own queries (backends that speak SQL). */
  get db(): SqlDriver {
    if (!this.backend.sql) throw new SuperduperError(`the ${this.backend.name} backend has no SQL connection`);
    return this.backend.sql;
  }

  /** A Kysely query builder on this database (for typed queries mixing data and outputs). */
  get kysely(): Kysely<any> {
    if (!this.backend.kysely) throw new SuperduperError(`the ${this.backend.name} backend has no SQL query builder`);
    return this.backend.kysely;
  }

  /**
   * Vector search (superduper.like() on SQL databases): the k rows nearest to a
   * text query (embedded by a sidecar, or from the cache) or to a vector.
   */
  search(index: string, query: string | ArrayLike<number>, options: SearchOptions = {}): Promise<SearchHit[]> {
    return this.backend.search.like(index, query, options);
  }

  /**
   * Retrieval-augmented generation with the answer streamed: superduper.rag()
   * (the same prompt, sources and answer cache), with the LLM run in this
   * process from its stored spec. Resolves once the sources are found; the
   * answer's text then arrives in pieces. Not on MongoDB.
   *
   * @example
   * const reply = await db.rag('chunk_index', 'How long are backups kept?', { llm: 'llm', k: 5 });
   * for await (const piece of reply) process.stdout.write(piece);
   * const { answer, sources } = await reply.result; // sources[i].cited: the answer names [n]
   */
  rag(index: string, question: string, options: RagOptions): Promise<RagAnswer> {
    return askRag(this.backend, this.models, this.logger, index, question, options);
  }

  /** A table, for searches composed with Kysely: db.table('docs').like({ body: 'text' }, { index }). */
  table(name: string, options: { schema?: string } = {}): TableQuery {
    if (!this.backend.table) throw new SuperduperError(`the ${this.backend.name} backend has no SQL tables to compose searches with`);
    return this.backend.table(name, options.schema);
  }

  /** A model's prediction for one input, computed by a sidecar (superduper.predict). */
  predict(model: string, input: unknown): Promise<unknown> {
    return this.backend.modelCalls.predict(model, input);
  }

  /** Installs or upgrades superduper's layer in the database; safe to run at once from several processes. */
  install(): Promise<InstallResult> {
    return this.backend.install();
  }

  /** Whether superduper's layer is installed in the database. */
  installed(): Promise<boolean> {
    return this.backend.installed();
  }

  /**
   * Applies components (models, listeners, vector indexes) in one transaction.
   * Re-applying an unchanged component is a no-op; a changed listener is updated
   * in place or rebuilt as a new version (see docs/sql.md).
   */
  async apply(...components: Array<Component | Record<string, unknown>>): Promise<ApplyResult[]> {
    const { specs, uploads } = await componentSpecs(components, this.models.functions);
    const results = await this.backend.registry.apply(specs, uploads);
    for (const sidecar of this.#sidecars) sidecar.refresh();
    return results;
  }

  /**
   * What apply would do with these components, without doing it: each result
   * marked destructive (it removes or replaces outputs) or not, with a
   * listener's rows to compute and, for a model billed per token, an estimate
   * of the tokens its backfill sends.
   */
  async plan(...components: Array<Component | Record<string, unknown>>): Promise<PlanResult[]> {
    const { specs, uploads } = await componentSpecs(components, this.models.functions);
    return this.backend.registry.plan(specs, uploads);
  }

  /**
   * Writes an application into a package: a folder, or a .zip (docs/packaging.md).
   * Returns the package's document.
   */
  exportApplication(name: string, target: string): Promise<PackageDocument> {
    return exportApplication(this.backend.registry, name, target);
  }

  /**
   * Applies a package (a folder or a .zip written by exportApplication, or by
   * hand) in one transaction: refused, with nothing applied, when it is
   * damaged, unsafe, from a newer format, or needs a function model not given.
   */
  async applyPackage(path: string, options: PackageApplyOptions & { limits?: PackageLimits } = {}): Promise<ApplyResult[]> {
    return this.apply(packageApplication(await readPackage(path, options.limits), path, options));
  }

  /** What applyPackage would do, without doing it (see plan). */
  async planPackage(path: string, options: PackageApplyOptions & { limits?: PackageLimits } = {}): Promise<PlanResult[]> {
    return this.plan(packageApplication(await readPackage(path, options.limits), path, options));
  }

  /** Removes a listener (or a model no listener uses). */
  remove(name: string, options: { keepOutputs?: boolean; cascade?: boolean } = {}): Promise<ApplyResult[]> {
    return this.backend.registry.remove(name, { keepOutputs: options.keepOutputs ?? false, cascade: options.cascade ?? false });
  }

  /** Every listener version's status (superduper.status). With countDone false, `done` is null and the call is cheap to poll. */
  status(options: { countDone?: boolean } = {}): Promise<ListenerStatus[]> {
    return this.backend.registry.status({ countDone: options.countDone ?? true });
  }

  failures(listener?: string): Promise<FailureRow[]> {
    return this.backend.registry.failures(listener);
  }

  /** Queues a listener's failed rows again; returns how many. */
  retry(listener: string): Promise<number> {
    return this.backend.registry.retry(listener);
  }

  /** Queues a run of a trainer (by its name or its model's), fitted by a sidecar; returns the run's number at once. */
  train(trainer: string): Promise<number> {
    return this.#training('train').train(trainer);
  }

  /** Deploys a run of a trainer: by its deploy strategy, or the one given (pinned: `run`). */
  deploy(trainer: string, options: DeployOptions = {}): Promise<DeployResult> {
    return this.#training('deploy').deploy(trainer, options);
  }

  /** Deploys again the run deployed before the current one, and pins it. */
  rollback(trainer: string): Promise<DeployResult> {
    return this.#training('rollback').rollback(trainer);
  }

  /** Training runs (superduper.training_runs), of one trainer or all, oldest first. */
  trainingRuns(trainer?: string): Promise<TrainingRunRow[]> {
    return this.#training('trainingRuns').runs(trainer);
  }

  #training(method: string): TrainingControl {
    if (!this.backend.training) {
      throw new SuperduperError(`superduper.${method}: trainers run on PostgreSQL and the embedded database; ${this.backend.name} has none`);
    }
    return this.backend.training;
  }

  /** The sidecars the database knows of (superduper.workers). */
  sidecars(): Promise<SidecarRow[]> {
    return this.backend.sidecars.list();
  }

  /** Where a listener's outputs are, e.g. superduper.out_docs_embedding. */
  outputsTable(listener: string): Promise<string> {
    return this.backend.registry.outputsLocation(listener);
  }

  /**
   * Starts a sidecar in this process. Besides every model stored in the
   * database, it runs the function models applied through this object.
   *
   * On a PostgreSQL server it has connections of its own (application_name
   * "superduper sidecar"), which outlive the database's restarts and failovers
   * (see docs/operations.md); it starts even while the database is unreachable,
   * and throws only for errors no retry can fix. `sidecar.done` rejects if such
   * an error ends it later.
   */
  async start(options: Partial<SidecarOptions> = {}): Promise<Sidecar> {
    const backend = this.#ownsBackend ? await this.backend.forSidecar(options) : this.backend;
    const sidecar = new Sidecar(backend, this.models, { logger: this.logger, ...options });
    try {
      await sidecar.start();
    } catch (error) {
      if (backend !== this.backend) await backend.close();
      throw error;
    }
    this.#sidecars.add(sidecar);
    if (backend !== this.backend) this.#sidecarBackends.set(sidecar, backend);
    return sidecar;
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
        return await this.backend.queue.waitFor(listener, Math.max(0, deadline - Date.now()) / 1000);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === SQLSTATES.wait_timeout) {
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
          { hint: 'Is a sidecar running? Start one with "npx superduper start <uri>" or db.start().' },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 50));
    }
  }

  /** Stops this object's sidecars (gracefully), unloads models, closes the connection if it opened it. */
  async close(): Promise<void> {
    await Promise.all([...this.#sidecars].map((sidecar) => sidecar.stop()));
    this.#sidecars.clear();
    await Promise.all([...this.#sidecarBackends.values()].map((backend) => backend.close()));
    this.#sidecarBackends.clear();
    await this.models.close();
    // Model calls from queries are no longer answered by this object.
    this.#unhost?.();
    if (this.#ownsBackend) await this.backend.close();
  }
}
