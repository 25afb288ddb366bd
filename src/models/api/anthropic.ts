import type { LoadedModel, ModelRecord, ModelRuntime } from '../types.js';
import { ApiCalls } from './calls.js';
import { postJson, unexpectedAnswer } from './http.js';
import { prompting } from './prompt.js';
import { cutStream, eventJson, postEvents, streamError } from './sse.js';
import { apiSettings, samplingOptions } from './settings.js';

/** The API version this runtime speaks; Anthropic requires it on every call. */
const ANTHROPIC_VERSION = '2023-06-01';

/**
 * Anthropic's Messages API: POST {base_url}/v1/messages, one call per row.
 * config: `prompt`, `system`, `postprocess` (see prompt.ts), `max_tokens` (the
 * API requires one; default 1024), `temperature`, and the common fields (settings.ts).
 * Streams ("stream": true, server-sent events) when asked to and no postprocess is set.
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
    const request = (input: unknown) => ({
      model: settings.model,
      max_tokens: maxTokens,
      ...(prompt.system === undefined ? {} : { system: prompt.system }),
      ...(temperature === undefined ? {} : { temperature }),
      messages: [{ role: 'user', content: prompt.render(input) }],
    });
    // The answer comes as content_block_delta events; only text_delta ones are
    // the completion (thinking and tool-input deltas are not), as only text
    // blocks are in predict(). message_stop ends it; an "error" event (an
    // overloaded API) can come at any point.
    async function* stream(input: unknown, signal?: AbortSignal): AsyncGenerator<string> {
      const release = await calls.slot();
      try {
        for await (const event of postEvents(endpoint, '/v1/messages', { ...request(input), stream: true }, signal)) {
          const data = eventJson(endpoint, event) as { type?: string; delta?: { type?: string; text?: unknown }; error?: unknown };
          if (data?.type === 'message_stop') return;
          if (data?.type === 'error') throw streamError(endpoint, data.error);
          if (data?.type === 'content_block_delta' && data.delta?.type === 'text_delta' && typeof data.delta.text === 'string' && data.delta.text !== '') {
            yield data.delta.text;
          }
        }
        throw cutStream(endpoint, 'the stream ended without a message_stop event');
      } finally {
        release();
      }
    }
    return {
      predict: (inputs) =>
        calls.run(inputs, async ([input]) => {
          const answer = (await postJson(endpoint, '/v1/messages', request(input))) as { content?: Array<{ type?: string; text?: unknown }> };
          if (!Array.isArray(answer?.content)) throw unexpectedAnswer(endpoint, 'content[]', answer);
          // A reply is a list of blocks; the text blocks, in order, are the completion.
          const text = answer.content.flatMap((block) => (block?.type === 'text' && typeof block.text === 'string' ? [block.text] : [])).join('');
          return [prompt.finish(text)];
        }),
      // A postprocessed completion (JSON, a field of it) is only known whole.
      ...(prompt.raw ? { stream } : {}),
    };
  }
}
