import type { Kysely } from 'kysely';
import type { LayerVersion } from '../layer-version.js';
import type { ModelRecord } from '../models/types.js';
import type { ClaimedRow, InFlight, ListenerInfo } from '../sidecar/listener-info.js';
import type { ConnectionHealth } from './connection-health.js';
import type { TableQuery } from './postgres/search.js';
import type { SqlDriver } from './postgres/sql-driver.js';
import type {
  ApplyResult,
  DeployOptions,
  DeployResult,
  FailureRow,
  InstallResult,
  ListenerStatus,
  PlanResult,
  RagContextOptions,
  RagSource,
  SearchHit,
  SearchOptions,
  SidecarRow,
  TrainingRunRow,
  WaitResult,
} from './types.js';

/**
 * What a database can and cannot do, asked by the core instead of "which
 * database is this". A new backend states its own; nothing in the core names one.
 */
export interface Capabilities {
  /**
   * Every caller shares one session (the embedded database): a sidecar must
   * never hold it while it sleeps, and a wait cannot sleep inside it.
   */
  readonly sharedSession: boolean;
  /**
   * A change committed by one session wakes a sidecar listening on another
   * (PostgreSQL's NOTIFY). Without it, sidecars look for work every
   * `defaultReconcileMs`, or when the backend sees a write itself.
   */
  readonly crossSessionNotify: boolean;
  /**
   * Who answers a model call made inside the query language (superduper.like with
   * a text query, embed, predict): 'sidecars' (the database sends the request to
   * whichever sidecar takes it: dblink on PostgreSQL), 'host' (the process that
   * hosts the database, which registers through `modelCalls.host`), or 'none'.
   */
  readonly modelCallsFromQueries: 'sidecars' | 'host' | 'none';
  /** How often a sidecar looks for work without being woken, unless told otherwise (ms). */
  readonly defaultReconcileMs: number;
}

/**
 * One database, as the core sees it: the domain's operations, each of which a
 * backend implements in its own query language (see docs/architecture.md, "How
 * to add a backend"). `src/backends/postgres/` is the first implementation; the
 * embedded PGlite database reuses it with a driver of its own.
 */
export interface Backend {
  /** For messages: "postgres", "embedded". */
  readonly name: string;
  readonly capabilities: Capabilities;
  /** A connection string other processes can use, when there is one. */
  readonly uri: string | undefined;
  /** Whether the database is reachable from this process, and its outages. */
  readonly health: ConnectionHealth;
  /** The SQL connection, for backends that speak SQL (user queries); undefined otherwise. */
  readonly sql: SqlDriver | undefined;
  /** For backends that speak SQL: a Kysely query builder, made on first use. */
  readonly kysely?: Kysely<any>;
  /** For backends that speak SQL: a table, for searches composed with Kysely. */
  table?(name: string, schema?: string): TableQuery;

  /** Installs or upgrades superduper's layer; safe to run at once from several processes. */
  install(): Promise<InstallResult>;
  /** Whether the layer is installed (its registry exists). */
  installed(): Promise<boolean>;
  /** Whether an error says one of superduper's own objects is missing (was the layer removed?). */
  missesOwnObject(error: unknown): boolean;

  readonly registry: Registry;
  readonly queue: WorkQueue;
  readonly sidecars: SidecarLiveness;
  readonly wakeUp: WakeUp;
  readonly modelCalls: ModelCalls;
  readonly search: Search;
  /** Retrieval-augmented generation's database half; absent where the backend has none (MongoDB). */
  readonly rag?: RagStore;
  /** Trainers' runs, deploys and rollbacks; absent where the backend has no trainers (MongoDB). */
  readonly training?: TrainingControl;

  /**
   * The backend a sidecar in this process works through: connections of its
   * own, with deadlines (a stalled server is noticed), or this one when the
   * database lives in this process.
   */
  forSidecar(options: SidecarConnectionOptions): Promise<Backend>;
  /**
   * Closes every connection at once, in use or idle: after a check found the
   * database not answering, so that calls stuck on a stalled network fail now.
   */
  resetConnections(error: Error): void;
  close(): Promise<void>;
}

export interface SidecarConnectionOptions {
  /** A heartbeat not answered within this long means the connection stalled. */
  stallTimeoutMs?: number;
  /** Batches the sidecar runs at once: it needs that many connections and a few more. */
  concurrency?: number;
}

/** A model stored with its files: the spec, and the bytes to store by SHA-256 before it is applied. */
export interface ModelUpload {
  spec: Record<string, unknown>;
  artifact?: Uint8Array;
  files?: Record<string, Uint8Array>;
}

/**
 * The specs to send, each uploaded spec replaced by its stored form (its
 * files' SHA-256 filled in), at the top level or among an application's
 * components, where an application() puts its children's specs.
 */
export function withStoredSpecs(
  specs: ReadonlyArray<Record<string, unknown>>,
  stored: ReadonlyMap<Record<string, unknown>, Record<string, unknown>>,
): Array<Record<string, unknown>> {
  const swap = (spec: Record<string, unknown>): Record<string, unknown> => {
    const replaced = stored.get(spec);
    if (replaced) return replaced;
    if (spec.type === 'application' && Array.isArray(spec.components)) {
      return { ...spec, components: (spec.components as Array<Record<string, unknown>>).map(swap) };
    }
    return spec;
  };
  return specs.map(swap);
}

/** The component registry: what users declare, applied and removed as one transaction each. */
export interface Registry {
  /**
   * Applies specs (models, listeners, vector indexes, ...) in one transaction,
   * storing the uploads' files first (by content hash; a file already stored is
   * not sent again). Re-applying an unchanged spec is a no-op.
   */
  apply(specs: ReadonlyArray<Record<string, unknown>>, uploads: ReadonlyArray<ModelUpload>): Promise<ApplyResult[]>;
  /**
   * What apply would do with the same specs, without doing it (PostgreSQL:
   * superduper.plan, the apply run and rolled back; MongoDB: the apply's
   * decisions taken, its writes skipped): each result marked destructive or
   * not, a listener's rows to compute and, for a model billed per token, an
   * estimate of the tokens.
   */
  plan(specs: ReadonlyArray<Record<string, unknown>>, uploads: ReadonlyArray<ModelUpload>): Promise<PlanResult[]>;
  remove(name: string, options: { keepOutputs: boolean; cascade: boolean }): Promise<ApplyResult[]>;
  /** Every listener version's status. With countDone false, `done` is null and the call is cheap to poll. */
  status(options: { countDone: boolean }): Promise<ListenerStatus[]>;
  failures(listener: string | undefined): Promise<FailureRow[]>;
  /** Queues a listener's failed rows again; returns how many. */
  retry(listener: string): Promise<number>;
  /** Where a listener's outputs are, as the user names it (superduper.out_docs_embedding). */
  outputsLocation(listener: string): Promise<string>;
  /** A stored model's file, by SHA-256. */
  artifact(sha256: string): Promise<Uint8Array>;
  /**
   * An application as applied (its spec, and the template it came from, if
   * any) with the spec version of each component type here: what an export
   * writes. Undefined when there is no such application.
   */
  application(name: string): Promise<{ spec: Record<string, unknown>; template: Record<string, unknown> | null; specVersions: Record<string, number> } | undefined>;
  /** A model as registered, or undefined. */
  model(name: string): Promise<ModelRecord | undefined>;
}

/** A batch of work claimed by a sidecar: queued changes first, else a backfill range. */
export interface Claim {
  rows: ClaimedRow[];
  source: 'queue' | 'backfill' | 'none';
}

/** A row that could not be computed, as the queue records it. */
export interface RowFailure {
  key: string;
  /** The stamp the failed value was read under (see the claim template). */
  stamp: string | null;
  error: string;
  /** No retry can fix it (a NULL key value): straight to the failures. */
  permanent: boolean;
}

/** What a sidecar writes back for a claim. */
export interface WriteBatch {
  rows: ClaimedRow[];
  outputs: unknown[];
  /** Keys of rows gone since they were claimed: their outputs go. */
  gone: string[];
  /** Queue entries acknowledged (the claim's, less the failed rows'): keys and entry ids, in parallel. */
  ackPks: string[];
  ackIds: string[];
  /** Every queue entry of the claim, failed rows' included (a failure record replaces the failed ones). */
  claimedPks: string[];
  claimedIds: string[];
  /** The backfill range this finishes, if any. */
  chunk: number | null;
}

/**
 * Change capture and the work queue: what sidecars claim (with a lease),
 * compute and write back. A write keeps an output only if none computed from a
 * newer value is there.
 */
export interface WorkQueue {
  claim(sidecarId: string, listener: ListenerInfo): Promise<Claim>;
  /**
   * Writes outputs, records failures (retry with backoff, or the failures table)
   * and acknowledges the claim, all in one transaction. Throws ListenerChanged
   * (see errors.ts) when the listener was removed or replaced meanwhile.
   */
  write(sidecarId: string, listener: ListenerInfo, batch: WriteBatch, failures: readonly RowFailure[]): Promise<number>;
  /** Keeps a long batch's claim leased. */
  extendLease(sidecarId: string, flight: InFlight): Promise<void>;
  /**
   * Says how many rows of a backfill range this sidecar holds it has computed
   * so far (not yet written): status shows them as computing, so that
   * progress moves while a slow model works through a range.
   */
  progress(sidecarId: string, listener: ListenerInfo, chunk: number, computed: number): Promise<void>;
  /** Hands back everything this sidecar has claimed (after its batches failed with their connection). */
  release(sidecarId: string): Promise<void>;
  /**
   * Read your writes: resolves once every change committed before the call (to
   * the listener's table, default every listener's) has its output or has failed
   * for good; rejects with code SDT01 after timeoutSeconds.
   */
  waitFor(listener: string | undefined, timeoutSeconds: number): Promise<WaitResult>;
}

export interface SidecarRegistration {
  id: string;
  host: string;
  pid: number;
  functions: string[];
  heartbeatMs: number;
}

export interface TrainingOptions {
  sidecarId: string;
  /** A run is another sidecar's to take over once this long passes without its lease being extended. */
  leaseSeconds: number;
  /** The most memory the fit may take (the worker thread's heap); a run that needs more is refused, naming the setting. */
  memoryMb: number;
  /** Aborted when the sidecar stops: the fit ends and the run is handed over. */
  signal?: AbortSignal;
}

/** How a training run a sidecar claimed ended. */
export type TrainingOutcome = { trainer: string; run: number; seconds: number } & (
  | { state: 'done'; deployed: boolean; decision: string }
  | { state: 'failed'; error: string }
  | { state: 'taken over' }
);

/** Trainers (sql/functions/047_trainers.sql): runs on demand, their record, and which one serves. */
export interface TrainingControl {
  /** Queues a run, fitted by a sidecar; returns its number at once (the run already waiting, if one is). */
  train(trainer: string): Promise<number>;
  deploy(trainer: string, options: DeployOptions): Promise<DeployResult>;
  /** Deploys again the run deployed before the current one, and pins it. */
  rollback(trainer: string): Promise<DeployResult>;
  /** Every run (of one trainer, or all), oldest first. */
  runs(trainer: string | undefined): Promise<TrainingRunRow[]>;
}

/** Sidecars announce themselves, beat, and are presumed dead by each other when silent. */
export interface SidecarLiveness {
  /** Announces a sidecar; returns the installed layer's version, to check against this code. */
  register(sidecar: SidecarRegistration): Promise<LayerVersion>;
  /**
   * Says this sidecar is alive (and what it is doing); releases the claims of
   * sidecars silent for deadAfterMs. Throws code SDU01 if this sidecar is not
   * registered (presumed dead by another).
   */
  heartbeat(
    sidecarId: string,
    beat: { deadAfterMs: number; state: string; outage?: { at: string; seconds: number; reason: string }; timeoutMs: number },
  ): Promise<{ layer: LayerVersion; released: number }>;
  /** Unregisters, releasing its claims. */
  stop(sidecarId: string, timeoutMs: number): Promise<void>;
  /** The listener versions a sidecar can compute, with whether each has work. */
  listeners(functions: readonly string[]): Promise<ListenerInfo[]>;
  /** Swaps in rebuilt listener versions whose backfill is complete; returns how many. */
  promoteReady(): Promise<number>;
  /**
   * Builds the vector index versions a breaking change asked for, beside the
   * current ones, and swaps each in once built; returns how many were. May run
   * for as long as the graphs take (PostgreSQL: CREATE INDEX CONCURRENTLY).
   */
  buildVectorIndexes(): Promise<number>;
  /**
   * Fires the schedules that are due (sql/functions/046_schedules.sql): each
   * due time claimed by one sidecar only, its action run; records the next due
   * times. Returns how many firings this sidecar ran.
   */
  runSchedules(sidecarId: string): Promise<number>;
  /**
   * Queues the retraining that changed rows ask for, then claims one training
   * run and fits it (sql/functions/047_trainers.sql, src/training/): reads its
   * rows, fits in a worker thread, records the run and deploys it if its
   * trainer's strategy says so. Undefined when no run was waiting (and on
   * backends without trainers). Runs for as long as the fit takes.
   */
  runTraining(options: TrainingOptions): Promise<TrainingOutcome | undefined>;
  /**
   * Reads again what searches take from the database's own statistics once
   * they have changed (PostgreSQL: how many rows hold each common word of a
   * full-text index, after an ANALYZE). Cheap when nothing changed; called as
   * the sidecar reconciles.
   */
  refreshSearchStatistics(): Promise<void>;
  /** Housekeeping a working sidecar does once a second (the change log's vacuum on PostgreSQL). */
  maintain(): Promise<void>;
  /** The sidecars the database knows of, for status. */
  list(): Promise<SidecarRow[]>;
}

/** What wakes a sidecar: changes, model calls, and the connection that carries them coming back. */
export interface WakeUpHandlers {
  /** A listener has new changes (its id; unknown ids mean the listeners changed). */
  changed(listenerId: number | undefined): void;
  /** A model call from a query (its id when known). */
  request(id: string | undefined): void;
  /** An embedding request carried whole (model version and input), to compute without reading it. */
  carried(request: { id: string; model: string; hash: string; input: unknown }): void;
  /** The wake-up connection is back: what was sent meanwhile is lost. */
  reconnected(): void;
  /** The wake-up connection is lost: until it is back, nothing wakes the sidecar. */
  lost(): void;
}

export interface WakeUp {
  /** Calls handlers for each wake-up; returns the unsubscribe function. */
  subscribe(handlers: WakeUpHandlers): Promise<() => Promise<void>>;
  /**
   * Runs fn while this sidecar is marked asleep, so that writers committing from
   * now on wake it. `marked` says whether the mark was taken (if not, writers may
   * not wake it: sleep briefly). A change committed before the mark is seen by a
   * look made inside fn. Only for backends with crossSessionNotify and no shared session.
   */
  asleep<T>(sidecarId: string, quickMs: number, fn: (marked: boolean) => Promise<T>): Promise<T>;
}

/** A model call made from a query, waiting for its answer. */
export interface ModelCallRequest {
  id: string;
  model: string;
  kind: 'embed' | 'predict';
  input: unknown;
  record: ModelRecord;
}

export type CallAnswer = { ok: true; value: unknown } | { ok: false; error: string };

/** Answers model calls for one model: the answers in the order of the inputs. */
export type CallAnswerer = (model: ModelRecord, inputs: readonly unknown[]) => Promise<CallAnswer[]>;

/** A sidecar's channel for model calls made from queries (capability modelCallsFromQueries 'sidecars'). */
export interface RequestChannel {
  /** Claims pending requests for models this sidecar can run: the one named first, else the oldest. */
  claim(sidecarId: string, functions: readonly string[], limit: number, named: string | null): Promise<ModelCallRequest[]>;
  answer(ids: readonly string[], results: ReadonlyArray<string | null>, errors: ReadonlyArray<string | null>): Promise<void>;
  close(broken?: boolean): void;
}

export interface ModelCalls {
  /** Opens a channel for a sidecar to serve requests (capability 'sidecars'). */
  open(): Promise<RequestChannel>;
  /**
   * Makes this process answer the model calls the database's queries make
   * (capability 'host'); returns the function that stops it.
   */
  host(answer: CallAnswerer): () => void;
  /** A model's prediction for one input, computed by a sidecar (or the host). */
  predict(model: string, input: unknown): Promise<unknown>;
}

export interface Search {
  /** The k rows nearest to a text query (embedded by a sidecar, or from the cache) or to a vector. */
  like(index: string, query: string | ArrayLike<number>, options: SearchOptions): Promise<SearchHit[]>;
}

/**
 * What a client needs of the database to answer a question itself (db.rag(),
 * which streams): the same prompt, sources and answer cache as superduper.rag().
 */
export interface RagStore {
  /** The model, checked to be one that answers a prompt with text (as superduper.rag() checks it). */
  llm(model: string): Promise<ModelRecord>;
  /** The prompt and its passages for a question, and the answer the cache holds for this model version and prompt (or null). */
  context(index: string, question: string, llm: string, options: RagContextOptions): Promise<{ prompt: string; sources: RagSource[]; cached: string | null }>;
  /**
   * Keeps an answer for this model version and prompt, where superduper.rag()
   * finds it; not kept if the model is no longer at `version` (applied again meanwhile).
   */
  store(llm: string, prompt: string, answer: string, version: string): Promise<void>;
}
