import type { OutputSpec } from '../models/types.js';

/**
 * Models behind HTTP APIs (src/models/api/). Each constructor returns the plain
 * spec that db.apply() and superduper.apply() take; the sidecars call the API.
 * No option takes a key: the sidecars read it from the environment variable
 * named by `apiKeyEnv` (null: send none, for a local server that needs none).
 */
export interface ApiModelOptions {
  /** The model's name in superduper. */
  name: string;
  /** The model's name at the provider, e.g. "text-embedding-3-small". */
  model: string;
  /** Another server speaking the same API (vLLM, llama.cpp, Ollama, a proxy). */
  baseUrl?: string;
  /** Environment variable holding the key (defaults: OPENAI_API_KEY, ANTHROPIC_API_KEY, CO_API_KEY). */
  apiKeyEnv?: string | null;
  /** HTTP calls in flight for this model, per sidecar process (default 4). */
  concurrency?: number;
  /** Retries of a call answered 429, 5xx, or not at all (default 5). */
  maxRetries?: number;
  /** Per call (default 60000). */
  timeoutMs?: number;
}

export interface EmbeddingOptions extends ApiModelOptions {
  /** The vectors' dimension: the outputs column is vector(dim). */
  dim: number;
  /** Texts per HTTP call (default 64). */
  batchSize?: number;
}

export interface PromptOptions extends ApiModelOptions {
  /** "Summarise: {body}"; {column} is filled from the row (see docs/models-api.md). Default: the row is the message. */
  prompt?: string;
  system?: string;
  /** Parse the completion as JSON, and optionally keep one field of it (a dot path). */
  postprocess?: { json?: boolean; field?: string };
  /** Default: text, or jsonb with a postprocess. */
  output?: OutputSpec;
  temperature?: number;
  maxTokens?: number;
}

export interface OpenAiEmbeddingOptions extends EmbeddingOptions {
  /** Ask for vectors of `dim` numbers (text-embedding-3 models shorten theirs; older models and most local servers refuse it). */
  sendDimensions?: boolean;
}

export interface CohereEmbedOptions extends EmbeddingOptions {
  /** "search_document" (default) for stored rows, "search_query" for a model that embeds queries. */
  inputType?: string;
}

/**
 * OpenAI (or compatible) embeddings.
 *
 * @example
 * await db.apply(openaiEmbeddings({ name: 'emb', model: 'text-embedding-3-small', dim: 1536 }));
 */
export function openaiEmbeddings(options: OpenAiEmbeddingOptions): Record<string, unknown> {
  return spec(options, 'openai', { type: 'vector', dim: options.dim }, {
    kind: 'embeddings',
    batch_size: options.batchSize,
    dimensions: options.sendDimensions ? options.dim : undefined,
  });
}

/**
 * OpenAI (or compatible) chat completions: one call per row.
 *
 * @example
 * await db.apply(openaiChat({ name: 'summary', model: 'gpt-4o-mini', prompt: 'Summarise in one line: {body}' }));
 */
export function openaiChat(options: PromptOptions): Record<string, unknown> {
  return spec(options, 'openai', promptOutput(options), { kind: 'chat', ...promptConfig(options) });
}

/** Anthropic's Messages API: one call per row. */
export function anthropicMessages(options: PromptOptions): Record<string, unknown> {
  return spec(options, 'anthropic', promptOutput(options), promptConfig(options));
}

/** Cohere embed (v2). */
export function cohereEmbed(options: CohereEmbedOptions): Record<string, unknown> {
  return spec(options, 'cohere', { type: 'vector', dim: options.dim }, { batch_size: options.batchSize, input_type: options.inputType });
}

/**
 * Cohere rerank (v2), or any API taking its body (Jina, Voyage, compatible
 * servers): a reranker for superduper.rerank(), its output the documents' scores.
 *
 * @example
 * await db.apply(cohereRerank({ name: 'reranker', model: 'rerank-v3.5' }));
 * // SELECT * FROM superduper.rerank('chunk_index', 'reset my password', 'reranker', 5);
 */
export function cohereRerank(options: ApiModelOptions): Record<string, unknown> {
  return spec(options, 'cohere', { type: 'jsonb' }, { kind: 'rerank' });
}

function promptOutput(options: PromptOptions): OutputSpec {
  return options.output ?? (options.postprocess ? { type: 'jsonb' } : { type: 'text' });
}

function promptConfig(options: PromptOptions): Record<string, unknown> {
  return {
    prompt: options.prompt,
    system: options.system,
    postprocess: options.postprocess,
    temperature: options.temperature,
    max_tokens: options.maxTokens,
  };
}

function spec(options: ApiModelOptions, runtime: string, output: OutputSpec, config: Record<string, unknown>): Record<string, unknown> {
  const all: Record<string, unknown> = {
    model: options.model,
    base_url: options.baseUrl,
    api_key_env: options.apiKeyEnv,
    concurrency: options.concurrency,
    max_retries: options.maxRetries,
    timeout_ms: options.timeoutMs,
    ...config,
  };
  // Unset options are left out, so that the stored spec (and its hash) has only what was chosen.
  const defined = Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined));
  return { type: 'model', name: options.name, runtime, output, config: defined };
}
