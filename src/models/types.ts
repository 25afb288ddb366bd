/**
 * What a model produces per input row; decides the type of the outputs column.
 * With `flatten`, the model returns a list per row, and each element is an
 * output row of that type (keyed by the row's key and its position).
 */
export type OutputSpec = (
  | { type: 'vector'; dim: number }
  | { type: 'jsonb' }
  | { type: 'text' }
  | { type: 'float' }
  | { type: 'integer' }
  | { type: 'boolean' }
) & { flatten?: boolean };

/** A model as registered in superduper._models (and in `superduper.models`). */
export interface ModelRecord {
  name: string;
  runtime: string;
  output: OutputSpec;
  config: Record<string, unknown>;
  artifact: string | null;
  spec_hash: string;
}

/**
 * A loaded model. `predict` gets a batch of inputs and returns one output per
 * input, in order. Each input is the value of the listener's key column, or an
 * object of column name to value when the listener has several keys.
 */
export interface LoadedModel {
  predict(inputs: readonly unknown[]): Promise<unknown[]>;
  /**
   * The output for one input as it is produced: text pieces that join to what
   * predict() gives for it (LLMs that stream: openai chat, anthropic, when no
   * postprocess changes the completion). Rejects once `signal` aborts. Models
   * without it are asked through predict().
   */
  stream?(input: unknown, signal?: AbortSignal): AsyncIterable<string>;
  close?(): Promise<void>;
}

export interface RuntimeContext {
  /** Bytes of a stored artifact (superduper._artifacts), by SHA-256. */
  fetchArtifact(sha256: string): Promise<Uint8Array>;
}

/** Knows how to load models of one `runtime`; a new runtime is a new file. */
export interface ModelRuntime {
  readonly name: string;
  load(model: ModelRecord, context: RuntimeContext): Promise<LoadedModel>;
}
