import { SuperduperError } from '../errors.js';

/**
 * What every reranker model takes and gives (the contract superduper.rerank()
 * relies on, whatever the runtime: an API such as Cohere's, a cross-encoder
 * run by transformers, a function model): each input is
 * {"query": text, "documents": [text, ...]}, and its output an array of
 * numbers, one per document in order, higher meaning more relevant.
 */
export interface RerankInput {
  query: string;
  documents: string[];
}

/** Checks one input against the contract, naming the model and what it expected. */
export function rerankInput(model: string, input: unknown): RerankInput {
  const { query, documents } = (typeof input === 'object' && input !== null ? input : {}) as Partial<Record<string, unknown>>;
  if (typeof query !== 'string' || !Array.isArray(documents) || !documents.every((d) => typeof d === 'string')) {
    const got = input === null ? 'NULL' : Array.isArray(input) ? 'an array' : typeof input === 'object' ? `an object with ${Object.keys(input).join(', ') || 'no fields'}` : `a ${typeof input}`;
    throw new SuperduperError(`reranker "${model}" takes {"query": text, "documents": [text, ...]}; got ${got}`, {
      code: 'api_input',
      hint: "Call it through superduper.rerank() or superduper.rerank_scores('<reranker>', '<query>', ARRAY['<passage>', ...]).",
    });
  }
  return { query, documents: documents as string[] };
}
