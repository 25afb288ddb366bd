import { SuperduperError } from '../../errors.js';
import type { LoadedModel, ModelRecord, ModelRuntime } from '../types.js';
import { ApiCalls } from './calls.js';
import { postJson, unexpectedAnswer } from './http.js';
import { texts } from './inputs.js';
import { apiSettings } from './settings.js';

/**
 * Cohere's embed API (v2): POST {base_url}/v2/embed. config: `input_type`
 * (default "search_document", what stored rows are; a model embedding search
 * queries wants "search_query"), and the common fields (settings.ts).
 */
export class CohereRuntime implements ModelRuntime {
  readonly name = 'cohere';

  async load(model: ModelRecord): Promise<LoadedModel> {
    const settings = apiSettings(model, {
      provider: 'cohere',
      kind: 'cohere',
      baseUrl: 'https://api.cohere.com',
      keyEnv: 'CO_API_KEY',
      fields: ['input_type'],
      batches: true,
    });
    const { endpoint } = settings;
    if (settings.key !== null) endpoint.headers.authorization = `Bearer ${settings.key}`;
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
