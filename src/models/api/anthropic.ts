import type { LoadedModel, ModelRecord, ModelRuntime } from '../types.js';
import { ApiCalls } from './calls.js';
import { postJson, unexpectedAnswer } from './http.js';
import { prompting } from './prompt.js';
import { apiSettings, samplingOptions } from './settings.js';

/** The API version this runtime speaks; Anthropic requires it on every call. */
const ANTHROPIC_VERSION = '2023-06-01';

/**
 * Anthropic's Messages API: POST {base_url}/v1/messages, one call per row.
 * config: `prompt`, `system`, `postprocess` (see prompt.ts), `max_tokens` (the
 * API requires one; default 1024), `temperature`, and the common fields (settings.ts).
 */
export class AnthropicRuntime implements ModelRuntime {
  readonly name = 'anthropic';

  async load(model: ModelRecord): Promise<LoadedModel> {
    const settings = apiSettings(model, {
      provider: 'anthropic',
      kind: 'anthropic',
      baseUrl: 'https://api.anthropic.com',
      keyEnv: 'ANTHROPIC_API_KEY',
      fields: ['prompt', 'system', 'postprocess', 'temperature', 'max_tokens'],
      batches: false,
    });
    const { endpoint } = settings;
    endpoint.headers['anthropic-version'] = ANTHROPIC_VERSION;
    if (settings.key !== null) endpoint.headers['x-api-key'] = settings.key;
    const prompt = prompting(endpoint.label, model.config);
    const { temperature, maxTokens = 1024 } = samplingOptions(endpoint.label, model.config); // the API requires max_tokens
    const calls = new ApiCalls(1, settings.concurrency);
    return {
      predict: (inputs) =>
        calls.run(inputs, async ([input]) => {
          const body = {
            model: settings.model,
            max_tokens: maxTokens,
            ...(prompt.system === undefined ? {} : { system: prompt.system }),
            ...(temperature === undefined ? {} : { temperature }),
            messages: [{ role: 'user', content: prompt.render(input) }],
          };
          const answer = (await postJson(endpoint, '/v1/messages', body)) as { content?: Array<{ type?: string; text?: unknown }> };
          if (!Array.isArray(answer?.content)) throw unexpectedAnswer(endpoint, 'content[]', answer);
          // A reply is a list of blocks; the text blocks, in order, are the completion.
          const text = answer.content.flatMap((block) => (block?.type === 'text' && typeof block.text === 'string' ? [block.text] : [])).join('');
          return [prompt.finish(text)];
        }),
    };
  }
}
