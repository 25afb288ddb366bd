import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { streamAnthropic, streamOpenAi, streamSettings, type StreamSettings } from './sse-answers.js';

/**
 * A local server speaking the wire formats of the model APIs the runtimes call,
 * so that tests and benchmarks exercise the real HTTP path with no network:
 *   POST /v1/embeddings, /v1/chat/completions  OpenAI (base_url: `${url}/v1`)
 *   POST /v1/messages                          Anthropic (base_url: url)
 *   POST /v2/embed, /v2/rerank                 Cohere (base_url: url)
 * Answers are deterministic, every request is recorded, and faults (429 with
 * Retry-After, 500...) and latency can be injected. Chat and messages requests
 * with "stream": true are answered as server-sent events (sse-answers.ts).
 */
export interface RecordedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body, inspected by tests
  body: any;
  /** performance.now() when it arrived. */
  at: number;
}

export interface Fault {
  status: number;
  retryAfter?: string;
  /** How many requests get this answer (default 1). */
  times?: number;
}

export interface ApiServer {
  /** http://127.0.0.1:<port> */
  url: string;
  requests: RecordedRequest[];
  /** Added to every answer. */
  latencyMs: number;
  /** Requests being answered now, and the most seen at once. */
  inFlight: number;
  maxInFlight: number;
  /** Answers the next requests with these faults, in order. */
  inject(...faults: Fault[]): void;
  /** The chat completion for a user message (default: `echo: <message>`; JSON when the message asks for JSON). */
  reply: (message: string, system: string | undefined) => string;
  /** A message here answers the request with HTTP 400, as an API rejects an input (too long, say). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the request's JSON body
  rejectIf: (body: any) => string | undefined;
  /** How streamed answers are sent (pauses, cuts, errors) and how many ended early. */
  stream: StreamSettings;
  close(): Promise<void>;
}

export interface ApiServerOptions {
  /** The key every provider expects (401 otherwise). Default: any non-empty key. */
  key?: string;
  /** Dimension of embeddings when the request names none (default 4). */
  dim?: number;
  latencyMs?: number;
}

/** The embedding the server computes: integers (exact in float4), from the text. */
export function fakeEmbedding(text: string, dim: number): number[] {
  const vector = [text.length, (text.match(/[aeiou]/gi) ?? []).length];
  for (let i = 0; vector.length < dim; i++) vector.push(text.charCodeAt(i) || 0);
  return vector.slice(0, dim);
}

/** The rerank server's relevance: the share of the query's words (of 3+ letters) the document holds. */
export function rerankScore(query: string, document: string): number {
  const words = (text: string) => new Set(text.toLowerCase().match(/[a-z0-9]{3,}/g) ?? []);
  const asked = words(query);
  const held = words(document);
  let shared = 0;
  for (const word of asked) if (held.has(word)) shared++;
  return asked.size === 0 ? 0 : shared / asked.size;
}

/** The default chat reply: an echo, or (when asked for JSON) a fenced JSON object as models write it. */
export function defaultReply(message: string): string {
  if (!message.includes('JSON')) return `echo: ${message}`;
  const subject = message.slice(message.lastIndexOf(':') + 1).trim();
  const json = { subject, words: subject.split(/\s+/).length, label: { name: /good|great/i.test(subject) ? 'positive' : 'negative' } };
  return `Here you are:\n\`\`\`json\n${JSON.stringify(json, null, 2)}\n\`\`\``;
}

export async function startApiServer(options: ApiServerOptions = {}): Promise<ApiServer> {
  const faults: Fault[] = [];
  const dim = options.dim ?? 4;
  const server: ApiServer = {
    url: '',
    requests: [],
    latencyMs: options.latencyMs ?? 0,
    inFlight: 0,
    maxInFlight: 0,
    inject: (...added) => faults.push(...added.map((fault) => ({ times: 1, ...fault }))),
    reply: defaultReply,
    rejectIf: () => undefined,
    stream: streamSettings(),
    close: () =>
      new Promise((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections(); // fetch keeps connections alive
      }),
  };

  const http = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const at = performance.now();
      server.inFlight++;
      server.maxInFlight = Math.max(server.maxInFlight, server.inFlight);
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
        server.requests.push({ path: request.url ?? '', headers: request.headers, body, at });
        if (server.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, server.latencyMs));
        await answer(request.url ?? '', request.headers, body, response);
      } catch (error) {
        send(response, 500, { error: { message: `test server: ${(error as Error).message}` } });
      } finally {
        server.inFlight--;
      }
    });
  });

  function answer(path: string, headers: IncomingHttpHeaders, body: any, response: ServerResponse): void | Promise<void> {
    const fault = faults[0];
    if (fault) {
      if (--fault.times! <= 0) faults.shift();
      const extra: Record<string, string> = fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter };
      return send(response, fault.status, { error: { message: `injected HTTP ${fault.status}` } }, extra);
    }
    const provider = path === '/v1/messages' ? 'anthropic' : path.startsWith('/v2/') ? 'cohere' : 'openai';
    const key = provider === 'anthropic' ? headers['x-api-key'] : headers.authorization?.replace(/^Bearer /, '');
    if (!key || (options.key !== undefined && key !== options.key)) {
      // Each provider's own shape of error body.
      if (provider === 'anthropic') return send(response, 401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
      if (provider === 'cohere') return send(response, 401, { message: 'invalid api token' });
      return send(response, 401, { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } });
    }
    const rejection = server.rejectIf(body);
    if (rejection !== undefined) return send(response, 400, { error: { message: rejection, type: 'invalid_request_error' } });
    switch (path) {
      case '/v1/embeddings': {
        const data = (body.input as string[]).map((text, index) => ({ object: 'embedding', index, embedding: fakeEmbedding(text, body.dimensions ?? dim) }));
        // Out of order on purpose: clients must place results by `index`.
        const tokens = (body.input as string[]).reduce((sum, text) => sum + wordCount(text), 0);
        return send(response, 200, { object: 'list', data: data.reverse(), model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
      }
      case '/v1/chat/completions': {
        const user = body.messages.findLast((m: { role: string }) => m.role === 'user').content as string;
        const system = body.messages.find((m: { role: string }) => m.role === 'system')?.content as string | undefined;
        const content = server.reply(user, system);
        if (body.stream === true) return streamOpenAi(response, server.stream, body.model, content);
        const usage = { prompt_tokens: wordCount(`${system ?? ''} ${user}`), completion_tokens: wordCount(content) };
        return send(response, 200, { id: 'chatcmpl-test', object: 'chat.completion', model: body.model, choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage });
      }
      case '/v1/messages': {
        if (headers['anthropic-version'] !== '2023-06-01') return send(response, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'anthropic-version header is required' } });
        if (typeof body.max_tokens !== 'number') return send(response, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } });
        const text = server.reply(body.messages.at(-1).content as string, body.system);
        if (body.stream === true) return streamAnthropic(response, server.stream, body.model, text);
        // Two text blocks (and a non-text one): clients must join the text blocks.
        const half = Math.floor(text.length / 2);
        const content = [{ type: 'text', text: text.slice(0, half) }, { type: 'thinking', thinking: '...' }, { type: 'text', text: text.slice(half) }];
        const usage = { input_tokens: wordCount(`${body.system ?? ''} ${body.messages.at(-1).content as string}`), output_tokens: wordCount(text) };
        return send(response, 200, { id: 'msg_test', type: 'message', role: 'assistant', model: body.model, content, stop_reason: 'end_turn', usage });
      }
      case '/v2/embed': {
        const float = (body.texts as string[]).map((text) => fakeEmbedding(text, dim));
        const billed = { input_tokens: (body.texts as string[]).reduce((sum, text) => sum + wordCount(text), 0) };
        return send(response, 200, { id: 'embed-test', embeddings: { float }, texts: body.texts, meta: { billed_units: billed } });
      }
      case '/v2/rerank': {
        // Relevance in order of relevance, as Cohere answers: clients must place scores by `index`.
        const documents = body.documents as string[];
        const results = documents.map((text, index) => ({ index, relevance_score: rerankScore(body.query as string, text) }));
        results.sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index);
        return send(response, 200, { id: 'rerank-test', results: results.slice(0, body.top_n ?? documents.length), meta: {} });
      }
      default:
        return send(response, 404, { error: { message: `no route ${path}` } });
    }
  }

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  server.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return server;
}

/** The tokens this stand-in counts: a token a word (real tokenizers count more; the shape is what matters). */
function wordCount(text: string): number {
  return text.split(/\s+/).filter((word) => word !== '').length;
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}
