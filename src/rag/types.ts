import type { RagContextOptions, RagSource } from '../backends/types.js';

export type { RagContextOptions, RagSource };

export interface RagOptions extends RagContextOptions {
  /** The LLM: a model that answers a prompt with text (openai chat, anthropic, a function model...). */
  llm: string;
  /** Stops the answer: the iteration and `answer` reject with code "aborted", and nothing is cached. */
  signal?: AbortSignal;
}

/** The answer with its sources, as superduper.rag() returns them. */
export interface RagResult {
  answer: string;
  /** The passages given to the LLM, each marked `cited` if the answer names it as [n]. */
  sources: Array<RagSource & { cited: boolean }>;
  cached: boolean;
}

/**
 * An answer on its way: the sources and the prompt are known at once, the text
 * comes as the LLM writes it. Iterating it (or `tokens`) gives the text's
 * pieces; each iteration starts from the first piece, and one may stop early
 * without stopping the answer (use `signal` for that). A failure (the API's
 * error, a cut stream, an abort) rejects the iteration, `answer` and `result`.
 */
export interface RagAnswer extends AsyncIterable<string> {
  /** The prompt the LLM is given (superduper.rag_context()'s). */
  readonly prompt: string;
  /** The passages in the prompt, in rank order. */
  readonly sources: RagSource[];
  /** Whether the answer comes from the cache (then it is one piece). */
  readonly cached: boolean;
  /** The answer's text, in the pieces the LLM streams (one piece when its runtime does not stream). */
  readonly tokens: AsyncIterable<string>;
  /** The whole answer, once it is complete and cached. */
  readonly answer: Promise<string>;
  /** The answer with the sources it cites. */
  readonly result: Promise<RagResult>;
}
