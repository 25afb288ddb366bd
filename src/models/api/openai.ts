import { SuperduperError } from '../../errors.js';
import type { LoadedModel, ModelRecord, ModelRuntime } from '../types.js';
import { ApiCalls } from './calls.js';
import { postJson, unexpectedAnswer } from './http.js';
import { texts } from './inputs.js';
import { prompting } from './prompt.js';
import { cutStream, eventJson, postEvents, streamError } from './sse.js';
import { apiSettings, optionalNumber, samplingOptions, type ApiSettings } from './settings.js';

/**
 * The OpenAI API, and the many servers that speak it (vLLM, llama.cpp's server,
 * Ollama, LiteLLM...) through config.base_url.
 *
 * config.kind "embeddings": POST {base_url}/embeddings; optional `dimensions`
 *   (text-embedding-3 models shorten their vectors; it must equal the output's dim).
 * config.kind "chat": POST {base_url}/chat/completions, one call per row; `prompt`,
 *   `system`, `postprocess` (see prompt.ts), `temperature`, `max_tokens`. Streams
 *   ("stream": true, server-sent events) when asked to and no postprocess is set.
 * Common fields: see settings.ts.
 */
export class OpenAiRuntime implements ModelRuntime {
  readonly name = 'openai';

  async load(model: ModelRecord): Promise<LoadedModel> {
    const kind = model.config.kind;
    if (kind === 'embeddings') return embeddings(model);
    if (kind === 'chat') return chat(model);
    throw new SuperduperError(`model "${model.name}" (openai): config.kind must be "embeddings" or "chat"; got ${JSON.stringify(kind)}`);
  }
}

const defaults = { provider: 'openai', baseUrl: 'https://api.openai.com/v1', keyEnv: 'OPENAI_API_KEY' };

function withAuth(settings: ApiSettings): ApiSettings {
  if (settings.key !== null) settings.endpoint.headers.authorization = `Bearer ${settings.key}`;
  return settings;
}

function embeddings(model: ModelRecord): LoadedModel {
  const settings = withAuth(apiSettings(model, { ...defaults, kind: 'embeddings', fields: ['kind', 'dimensions'], batches: true }));
  const { endpoint } = settings;
  const dimensions = optionalNumber(endpoint.label, model.config, 'dimensions', { integer: true, min: 1 });
  if (dimensions !== undefined && (model.output.type !== 'vector' || model.output.dim !== dimensions)) {
    throw new SuperduperError(`${endpoint.label}: config.dimensions (${dimensions}) must equal the output's dim`);
  }
  const calls = new ApiCalls(settings.batchSize, settings.concurrency);
  return {
    predict: (inputs) =>
      calls.run(inputs, async (chunk) => {
        const body = { model: settings.model, input: texts(endpoint.label, chunk), ...(dimensions ? { dimensions } : {}) };
        const answer = (await postJson(endpoint, '/embeddings', body)) as { data?: Array<{ index?: number; embedding?: unknown }> };
        if (!Array.isArray(answer?.data) || answer.data.some((item) => !Array.isArray(item?.embedding))) {
          throw unexpectedAnswer(endpoint, 'data[].embedding', answer);
        }
        // The API documents `index` as the input's position; do not trust the order.
        return [...answer.data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0)).map((item) => item.embedding);
      }),
  };
}

function chat(model: ModelRecord): LoadedModel {
  const settings = withAuth(
    apiSettings(model, { ...defaults, kind: 'chat', fields: ['kind', 'prompt', 'system', 'postprocess', 'temperature', 'max_tokens'], batches: false }),
  );
  const { endpoint } = settings;
  const prompt = prompting(endpoint.label, model.config);
  const { temperature, maxTokens } = samplingOptions(endpoint.label, model.config);
  const calls = new ApiCalls(1, settings.concurrency);
  const request = (input: unknown) => ({
    model: settings.model,
    messages: [...(prompt.system === undefined ? [] : [{ role: 'system', content: prompt.system }]), { role: 'user', content: prompt.render(input) }],
    ...(temperature === undefined ? {} : { temperature }),
    ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }),
  });
  // Each event holds a piece of the answer in choices[0].delta.content;
  // "data: [DONE]" ends it.
  async function* stream(input: unknown, signal?: AbortSignal): AsyncGenerator<string> {
    const release = await calls.slot();
    try {
      for await (const event of postEvents(endpoint, '/chat/completions', { ...request(input), stream: true }, signal)) {
        if (event.data === '[DONE]') return;
        const chunk = eventJson(endpoint, event) as { choices?: Array<{ delta?: { content?: unknown } }>; error?: unknown };
        // Compatible servers (vLLM, LiteLLM) report a failure mid-answer as an event with "error".
        if (chunk?.error) throw streamError(endpoint, chunk.error);
        const content = chunk?.choices?.[0]?.delta?.content;
        if (typeof content === 'string' && content !== '') yield content;
      }
      throw cutStream(endpoint, 'the stream ended without "data: [DONE]"');
    } finally {
      release();
    }
  }
  return {
    predict: (inputs) =>
      calls.run(inputs, async ([input]) => {
        const answer = (await postJson(endpoint, '/chat/completions', request(input))) as { choices?: Array<{ message?: { content?: unknown } }> };
        const content = answer?.choices?.[0]?.message?.content;
        if (typeof content !== 'string') throw unexpectedAnswer(endpoint, 'choices[0].message.content', answer);
        return [prompt.finish(content)];
      }),
    // A postprocessed completion (JSON, a field of it) is only known whole.
    ...(prompt.raw ? { stream } : {}),
  };
}
