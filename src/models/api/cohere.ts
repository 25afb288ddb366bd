import { SuperduperError } from '../../errors.js';
import type { LoadedModel, ModelRecord, ModelRuntime } from '../types.js';
import { ApiCalls } from './calls.js';
import { cohereReranker } from './cohere-rerank.js';
import { postJson, unexpectedAnswer } from './http.js';
import { texts } from './inputs.js';
import { apiSettings } from './settings.js';

/**
 * Cohere's APIs (v2), by config.kind:
 *   "embed" (default)  POST {base_url}/v2/embed; `input_type` (default
 *                      "search_document", what stored rows are; a model
 *                      embedding search queries wants "search_query")
 *   "rerank"           POST {base_url}/v2/rerank: a reranker (cohere-rerank.ts)
 * and the common fields (settings.ts).
 */
export class CohereRuntime implements ModelRuntime {
  readonly name = 'cohere';

  async load(model: ModelRecord): Promise<LoadedModel> {
    const kind = model.config.kind ?? 'embed';
    if (kind !== 'embed' && kind !== 'rerank') {
      throw new SuperduperError(`model "${model.name}" (cohere): config.kind must be "embed" or "rerank"; got ${JSON.stringify(kind)}`);
    }
    const settings = apiSettings(model, {
      provider: 'cohere',
      kind: kind === 'rerank' ? 'rerank' : 'cohere',
      baseUrl: 'https://api.cohere.com',
      keyEnv: 'CO_API_KEY',
      fields: kind === 'rerank' ? ['kind'] : ['kind', 'input_type'],
      batches: kind === 'embed',
    });
    const { endpoint } = settings;
    if (settings.key !== null) endpoint.headers.authorization = `Bearer ${settings.key}`;
    if (kind === 'rerank') return cohereReranker(model, settings);
    const inputType = model.config.input_type ?? 'search_document';
    if (typeof inputType !== 'string' || inputType === '') {
      throw new SuperduperError(`${endpoint.label}: config.input_type must be a string such as "search_document" or "search_query"`);
    }
    const calls = new ApiCalls(settings.batchSize, settings.concurrency);
    return {
      predict: (inputs) =>
        calls.run(inputs, async (chunk) => {
          const body = { model: settings.model, texts: texts(endpoint.label, chunk), input_type: inputType, embedding_types: ['float'] };
          const answer = (await postJson(endpoint, '/v2/embed', body)) as { embeddings?: { float?: unknown } };
          const vectors = answer?.embeddings?.float;
          if (!Array.isArray(vectors)) throw unexpectedAnswer(endpoint, 'embeddings.float', answer);
          return vectors as unknown[];
        }),
    };
  }
}
