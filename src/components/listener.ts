import { DEFAULT_EMBEDDER } from '../models/text-embedder-runtime.js';
import type { ModelComponent } from './model.js';

export interface ListenerSettings {
  /** Rows per model call (default 64). */
  batch_size?: number;
  /** Rows per backfill range claimed at once (default 1000). */
  chunk_size?: number;
  /** Attempts before a row moves to superduper.failures (default 5). */
  max_attempts?: number;
  /** First retry delay in seconds, doubled per attempt (default 1). */
  backoff_seconds?: number;
  /** Longest retry delay in seconds (default 300). */
  backoff_max_seconds?: number;
  /** How long a claim is held before another sidecar may take it over (default 60). */
  lease_seconds?: number;
}

export interface ListenerOptions {
  /** Names the listener and its outputs table, superduper.out_<name>. */
  name: string;
  /** A registered model's name, or a model component (applied first). Default: the default text embedder. */
  model?: string | ModelComponent;
  /** The source table, as written (no quoting needed). On MongoDB: the collection (or give `collection`). */
  table?: string;
  /** On MongoDB: the source collection. */
  collection?: string;
  /** Its schema; default: the first schema of the search_path that has the table. */
  schema?: string;
  /** Columns whose values the model gets; a change to any of them recomputes the row. On MongoDB: field paths ("body", "meta.title"). */
  keys: string[];
  /**
   * Only rows for which this SQL boolean expression over the table's columns
   * holds; on MongoDB, a query document ({"status": "published"}).
   */
  filter?: string | Record<string, unknown>;
  settings?: ListenerSettings;
}

export interface ListenerComponent {
  readonly kind: 'listener';
  readonly name: string;
  readonly model: string | ModelComponent;
  readonly spec: Record<string, unknown>;
  /** The model, when given as an object: applied with the listener. */
  readonly uses: readonly ModelComponent[];
}

/**
 * "Keep the output of this model on these columns of this table up to date."
 *
 * @example
 * await db.apply(listener({ name: 'docs_embedding', model: 'minilm', table: 'docs', keys: ['body'] }));
 * // outputs: SELECT d.*, o.output FROM docs d JOIN superduper.out_docs_embedding o USING (id)
 */
export function listener(options: ListenerOptions): ListenerComponent {
  if ((options.table === undefined) === (options.collection === undefined)) {
    throw new Error(`listener "${options.name}": give the source as "table" (or, on MongoDB, "collection"), once`);
  }
  const model = options.model === undefined ? DEFAULT_EMBEDDER : typeof options.model === 'string' ? options.model : options.model.name;
  return {
    kind: 'listener',
    name: options.name,
    model: options.model ?? DEFAULT_EMBEDDER,
    uses: typeof options.model === 'object' ? [options.model] : [],
    spec: {
      type: 'listener',
      name: options.name,
      model,
      ...(options.collection === undefined ? { table: options.table } : { collection: options.collection }),
      ...(options.schema === undefined ? {} : { schema: options.schema }),
      keys: options.keys,
      ...(options.filter === undefined ? {} : { filter: options.filter }),
      ...(options.settings === undefined ? {} : { settings: options.settings }),
    },
  };
}
