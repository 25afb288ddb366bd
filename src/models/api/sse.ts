import { EventSourceParserStream, type EventSourceMessage } from 'eventsource-parser/stream';
import { SuperduperError } from '../../errors.js';
import { abortedRequest, networkMessage, post, quote, type ApiEndpoint } from './http.js';

/**
 * POSTs a JSON body that asks for a streamed answer and yields its server-sent
 * events (OpenAI's chat completions and Anthropic's messages with "stream":
 * true). Until the answer starts, failures are retried as postJson retries
 * them; once events flow, part of the answer has been given, so a failure ends
 * the stream with an error saying it was cut (code api_unavailable).
 *
 * timeout_ms bounds the wait for each event, not the whole answer: a long
 * answer that keeps coming is not cut, a stalled one is. Stopping early (a
 * `break`, the caller's `signal`) closes the connection.
 */
export async function* postEvents(endpoint: ApiEndpoint, path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<EventSourceMessage> {
  const stall = new Stall(endpoint.timeoutMs, signal);
  try {
    const response = await post(endpoint, path, body, { accept: 'text/event-stream', signal: () => stall.attempt(), read: async (r) => r, abort: signal });
    const type = response.headers.get('content-type') ?? '';
    if (!type.includes('text/event-stream')) {
      const text = await response.text().catch(() => '');
      throw new SuperduperError(
        `${endpoint.label}: ${endpoint.provider} at ${endpoint.baseUrl} answered a streamed request with ${type || 'no content-type'}, not text/event-stream: ${quote(text)}`,
        { code: 'api_response', hint: 'Check config.base_url: the server must speak this API, including "stream": true.' },
      );
    }
    const events = response.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
    try {
      for await (const event of events) {
        stall.touch();
        yield event;
      }
    } catch (error) {
      if (signal?.aborted) throw abortedRequest(endpoint, signal);
      throw cutStream(endpoint, stall.stalled ? `no event for ${endpoint.timeoutMs} ms (timeout_ms)` : `the connection broke (${networkMessage(error)})`, error);
    }
  } finally {
    stall.stop();
  }
}

/** The answer stopped before its end: the connection broke, stalled, or closed without the API's last event. */
export function cutStream(endpoint: ApiEndpoint, reason: string, cause?: unknown): SuperduperError {
  return new SuperduperError(`${endpoint.label}: ${endpoint.provider} at ${endpoint.baseUrl} cut the streamed answer off: ${reason}`, {
    code: 'api_unavailable',
    cause,
  });
}

/** An event's data as JSON; anything else means the server does not speak the API. */
export function eventJson(endpoint: ApiEndpoint, event: EventSourceMessage): unknown {
  try {
    return JSON.parse(event.data);
  } catch {
    throw new SuperduperError(`${endpoint.label}: ${endpoint.provider} at ${endpoint.baseUrl} sent a stream event that is not JSON: ${quote(event.data)}`, {
      code: 'api_response',
      hint: 'Check config.base_url: it must point at a server speaking this API.',
    });
  }
}

/** An error the API reports inside the stream (an overloaded server, say), after the answer started. */
export function streamError(endpoint: ApiEndpoint, error: unknown): SuperduperError {
  const message = (error as { message?: unknown })?.message;
  return new SuperduperError(
    `${endpoint.label}: ${endpoint.provider} at ${endpoint.baseUrl} stopped the streamed answer with an error: ${typeof message === 'string' ? message : quote(JSON.stringify(error) ?? '')}`,
    { code: 'api_unavailable' },
  );
}

/**
 * The per-event deadline: each attempt gets a signal of its own (a timed-out
 * attempt must not doom its retry), aborted after `ms` without progress or when
 * the caller's signal aborts.
 */
class Stall {
  stalled = false;
  #controller = new AbortController();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly outer: AbortSignal | undefined,
  ) {}

  attempt(): AbortSignal {
    this.stop();
    this.#controller = new AbortController();
    this.stalled = false;
    this.touch();
    return this.outer ? AbortSignal.any([this.#controller.signal, this.outer]) : this.#controller.signal;
  }

  touch(): void {
    clearTimeout(this.#timer);
    const controller = this.#controller;
    this.#timer = setTimeout(() => {
      this.stalled = true;
      controller.abort(new DOMException(`no answer within ${this.ms} ms`, 'TimeoutError'));
    }, this.ms);
  }

  /** Also closes the connection when the reader stops before the end. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#controller.abort();
  }
}
