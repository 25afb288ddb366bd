/**
 * What the core's operations return, whatever the database: the shapes of the
 * registry's views (superduper.status, superduper.failures, superduper.workers on
 * PostgreSQL) as TypeScript sees them.
 */

/** What apply() reports per component. */
export interface ApplyResult {
  type: string;
  name: string;
  /**
   * 'kept': a component an application let go of but did not remove: another
   * application holds it too (held_by names them), or it is a model something
   * still uses (used_by names what).
   */
  action: 'created' | 'unchanged' | 'updated' | 'rebuilding' | 'removed' | 'kept';
  version?: number;
  backfill?: number;
  /** An application's: what happened to the components it no longer lists (removed first), then to each of its components, in order. */
  components?: ApplyResult[];
  held_by?: string;
  used_by?: string;
  [key: string]: unknown;
}

/** What an apply would do to one component (superduper.plan). */
export interface PlanResult extends ApplyResult {
  /** It removes or replaces outputs (removed, rebuilding), or, for an application, one of its components does. */
  destructive: boolean;
  /** A listener's rows to compute. */
  rows?: number;
  /** A listener whose model is billed per token: about how many tokens its backfill sends (four characters a token). */
  tokens_estimate?: number;
  components?: PlanResult[];
}

/** A listener version's status. */
export interface ListenerStatus {
  listener: string;
  version: number;
  /** 'stopped': the change stream cannot follow the source any more (MongoDB: it was dropped or renamed); the note says why. */
  state: 'current' | 'building' | 'frozen' | 'stopped';
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
  /** Rows of claimed backfill ranges a sidecar has computed and not yet written (a range is written at once). */
  computing: number;
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

/** What waitFor() found: the failures among the changes waited for (none: every output is current). */
export interface WaitResult {
  failed: Array<{ listener: string; primary_key: string[]; error: string; failed_at: Date }>;
}

/** A sidecar as the database knows it. */
export interface SidecarRow {
  id: string;
  state: string;
  /** Seconds since it was last heard from. */
  seen: number;
  outages: number;
  /** Length of its last outage, in seconds. */
  last: number | null;
  reason: string | null;
}

export interface InstallResult {
  /** Migration versions applied by this call (empty when already current). */
  applied: number[];
  codeVersion: string;
  via: 'installer' | 'extension';
  extensions: { vector: string; dblink: string | null };
  warnings: string[];
}

/** One result of a vector search: the source row's primary key and its score (higher is nearer). */
export interface SearchHit {
  /** The key as text when the primary key is one column, else null. */
  id: string | null;
  /** Every primary key column, as text. */
  key: string[];
  score: number;
}

export interface SearchOptions {
  /** How many rows (1 to 1000, default 10). */
  k?: number;
  /**
   * Pre-filter on columns of the source table, applied during the search (the
   * result still has k rows when k rows match): {"status": "published"},
   * {"lang": ["en", "fr"]}, {"year": {">=": 2020}}. See docs/sql.md.
   */
  filter?: Record<string, unknown>;
}

/** A passage given to the LLM by rag: its number in the prompt ([n]), its key in the index's source, its search score, its estimated tokens. */
export interface RagSource {
  n: number;
  key: string[];
  score: number;
  tokens: number;
  /** Whether the answer cites it as [n] (known once the answer is). */
  cited?: boolean;
}

/** What superduper.rag_context() takes besides the index and the question; absent ones take the SQL defaults. */
export interface RagContextOptions {
  /** Passages searched for (default 5). */
  k?: number;
  /** A template holding {context} and {question} (default superduper.rag_default_prompt()). */
  prompt?: string;
  /** like()'s pre-filter, on the index's source. */
  filter?: Record<string, unknown>;
  /** The passages' budget, in tokens estimated as characters / 4 (default 2000). */
  contextTokens?: number;
  /** A reranker model: the top candidates reranked before the k best are kept. */
  rerank?: string;
}

/** A training run, as superduper.training_runs shows it. */
export interface TrainingRunRow {
  trainer: string;
  model: string;
  run: number;
  state: 'queued' | 'running' | 'done' | 'failed';
  reason: 'applied' | 'on_demand' | 'schedule' | 'changed_rows';
  /** Whether its artifact is the model's now. */
  deployed: boolean;
  /** The model version it was last deployed as. */
  model_version: number | null;
  metrics: Record<string, number> | null;
  rows: number | null;
  trained_rows: number | null;
  held_out_rows: number | null;
  /** pg_current_snapshot() of the transaction its rows were read in. */
  snapshot: string | null;
  fit_seconds: number | null;
  seconds: number | null;
  /** Whether it was deployed when it finished, and why (or why not: the gate). */
  decision: string | null;
  error: string | null;
  attempts: number;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

/** How to choose the run a deploy puts in service. */
export interface DeployOptions {
  /** most_recent, best_score (on the trainer's deploy metric, or `metric`), or pinned (`run`). Default: the trainer's. */
  strategy?: 'most_recent' | 'best_score' | 'pinned';
  run?: number;
  metric?: string;
}

/** What a deploy or rollback did. */
export interface DeployResult {
  trainer: string;
  model: string;
  run: number;
  strategy: string;
  action: 'deployed' | 'unchanged' | 'rolled back';
  /** The model's version now (absent when unchanged). */
  model_version?: number;
  /** Listeners using the model, rebuilding with it (their current version serves until they are done). */
  rebuilding?: string[];
  /** The run deployed before a rollback. */
  from?: number | null;
}
