import type { LoadedModel, ModelRecord } from '../types.js';
import { rerankInput } from '../rerank-input.js';
import { ApiCalls } from './calls.js';
import { postJson, unexpectedAnswer, type ApiEndpoint } from './http.js';
import type { ApiSettings } from './settings.js';

/**
 * Cohere's rerank API (v2): POST {base_url}/v2/rerank with the query and the
 * documents, answered with {results: [{index, relevance_score}]} in relevance
 * order. Jina's and Voyage's rerank APIs, and servers made to be compatible,
 * take the same body, so base_url can point at them. One call per input (a
 * query and its candidates); the scores come back in the documents' order, as
 * every reranker here gives them (rerank-input.ts).
 */
export function cohereReranker(model: ModelRecord, settings: ApiSettings): LoadedModel {
  const { endpoint } = settings;
  const calls = new ApiCalls(1, settings.concurrency);
  return {
    predict: (inputs) =>
      calls.run(inputs, async ([input]) => {
        const { query, documents } = rerankInput(model.name, input);
        if (documents.length === 0) return [[]];
        const body = { model: settings.model, query, documents, top_n: documents.length };
        return [scoresInOrder(endpoint, documents.length, await postJson(endpoint, '/v2/rerank', body))];
      }),
  };
}

function scoresInOrder(endpoint: ApiEndpoint, count: number, answer: unknown): number[] {
  const results = (answer as { results?: unknown })?.results;
  if (!Array.isArray(results)) throw unexpectedAnswer(endpoint, 'results', answer);
  const scores = new Array<number>(count).fill(Number.NaN);
  for (const result of results as Array<{ index?: unknown; relevance_score?: unknown }>) {
    const { index, relevance_score: score } = result ?? {};
    if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= count || typeof score !== 'number') {
      throw unexpectedAnswer(endpoint, `results[].index (0 to ${count - 1}) and results[].relevance_score`, answer);
    }
    scores[index as number] = score;
  }
  if (scores.some(Number.isNaN)) throw unexpectedAnswer(endpoint, `a score for each of the ${count} documents`, answer);
  return scores;
}
