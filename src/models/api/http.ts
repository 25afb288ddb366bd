import { setTimeout as sleep } from 'node:timers/promises';
import { SuperduperError } from '../../errors.js';
import { apiUsage, tokensOf, usageOf } from './usage.js';

/**
 * Where and how a model API is called. The error messages name all of it, since
 * the person reading a failure in superduper.failures did not write the request.
 */
export interface ApiEndpoint {
  /** Starts every error message, e.g. `model "summary" (openai chat)`. */
  label: string;
  /** Names the service in errors: openai, anthropic, cohere. */
  provider: string;
  /** The superduper model's name, and the provider's model id (config.model): for usage.ts. */
  model: string;
  apiModel: string;
  baseUrl: string;
  /** The environment variable the key came from, or null when no key is sent. */
  keyEnv: string | null;
  headers: Record<string, string>;
  timeoutMs: number;
  maxRetries: number;
}

/*
 * Errors are SuperduperErrors whose code says what kind of failure it is (calls.ts
 * branches on it):
 *   api_auth         401/403: nothing will work until the key is fixed
 *   api_unavailable  429, 5xx, network errors, timeouts, after the retries
 *   api_input        400, 413, 422: most likely about this request's input
 *   api_setup        another 4xx (404: an unknown model, a wrong base_url)
 *   api_response     a 2xx whose body is not what the API documents
 */

/** The first retry waits about this long; each later one twice as long. */
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8_000;
/**
 * A Retry-After longer than this is not waited for within a batch: the rows fail
 * and come back with the listener's own backoff, so a rate-limited API does not
 * hold a sidecar lane (and its claims) for minutes.
 */
const MAX_RETRY_AFTER_MS = 60_000;

/** POSTs a JSON body and returns the parsed JSON answer, retrying what a retry can fix. */
export async function postJson(endpoint: ApiEndpoint, path: string, body: unknown): Promise<unknown> {
  const text = await post(endpoint, path, body, {
    accept: 'application/json',
    // The timeout covers reading the body too: a stalled stream is a timeout.
    signal: () => AbortSignal.timeout(endpoint.timeoutMs),
    read: (response) => response.text(),
  });
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    const url = `${endpoint.baseUrl.replace(/\/+$/, '')}${path}`;
    const where = `${endpoint.provider} at ${endpoint.baseUrl}`;
    throw new SuperduperError(`${endpoint.label}: ${where} answered ${url} with something that is not JSON: ${quote(text)}`, {
      code: 'api_response',
    });
  }
  const tokens = tokensOf(answer);
  if (tokens) apiUsage.emit('tokens', { ...usageOf(endpoint), ...tokens });
  return answer;
}

/** How one request is sent and its successful answer read (postJson's, or a stream's: sse.ts). */
export interface PostOptions<T> {
  accept: string;
  /** The signal of one attempt (its timeout): a new one per attempt, so a timed-out attempt does not doom the retry. */
  signal: () => AbortSignal;
  /**
   * Reads a 2xx answer. It runs within the attempt: a network error or timeout
   * while reading is retried like one before the answer.
   */
  read: (response: Response) => Promise<T>;
  /** The caller's abort: never retried, and it cuts the waits between retries short. */
  abort?: AbortSignal;
}

/**
 * POSTs a JSON body, retrying what a retry can fix (network errors, timeouts,
 * 429 and 5xx with backoff) and turning every other failure into an error with
 * its code (see above); returns what `read` makes of the 2xx answer.
 */
export async function post<T>(endpoint: ApiEndpoint, path: string, body: unknown, options: PostOptions<T>): Promise<T> {
  try {
    const answer = await attempts(endpoint, path, body, options);
    apiUsage.emit('request', { ...usageOf(endpoint), outcome: 'ok' });
    return answer;
  } catch (error) {
    apiUsage.emit('request', { ...usageOf(endpoint), outcome: (error as { code?: string }).code ?? 'error' });
    throw error;
  }
}

async function attempts<T>(endpoint: ApiEndpoint, path: string, body: unknown, options: PostOptions<T>): Promise<T> {
  const url = `${endpoint.baseUrl.replace(/\/+$/, '')}${path}`;
  const where = `${endpoint.provider} at ${endpoint.baseUrl}`;
  const wait = async (ms: number) => {
    try {
      await sleep(ms, undefined, { signal: options.abort });
    } catch {
      throw abortedRequest(endpoint, options.abort!);
    }
  };
  for (let attempt = 0; ; attempt++) {
    const retriesLeft = attempt < endpoint.maxRetries;
    let status: number;
    let text: string;
    let retryAfter: string | null = null;
    try {
      if (options.abort?.aborted) throw options.abort.reason;
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: options.accept, ...endpoint.headers },
        body: JSON.stringify(body),
        signal: options.signal(),
      });
      status = response.status;
      if (status >= 200 && status < 300) return await options.read(response);
      retryAfter = response.headers.get('retry-after');
      text = await response.text();
    } catch (error) {
      if (options.abort?.aborted) throw abortedRequest(endpoint, options.abort);
      const reason = isTimeout(error) ? `no answer within ${endpoint.timeoutMs} ms (timeout_ms)` : networkMessage(error);
      if (!retriesLeft) throw unavailable(endpoint, `${where} could not be reached: ${reason}`, attempt, error);
      apiUsage.emit('retry', usageOf(endpoint));
      await wait(backoffMs(attempt));
      continue;
    }

    const message = apiMessage(text);
    if (status === 429 || status >= 500) {
      const ms = retryAfterMs(retryAfter) ?? backoffMs(attempt);
      if (ms > MAX_RETRY_AFTER_MS) {
        throw unavailable(endpoint, `${where} answered HTTP ${status} and asks to wait ${Math.ceil(ms / 1000)} s: ${message}`, attempt);
      }
      if (!retriesLeft) throw unavailable(endpoint, `${where} answered HTTP ${status}: ${message}`, attempt);
      apiUsage.emit('retry', usageOf(endpoint));
      await wait(ms);
      continue;
    }
    if (status === 401 || status === 403) {
      const key = endpoint.keyEnv ? `the API key from the environment variable ${endpoint.keyEnv}` : 'the request (no API key was sent: api_key_env is null)';
      throw new SuperduperError(`${endpoint.label}: ${where} refused ${key} (HTTP ${status}): ${message}`, {
        code: 'api_auth',
        hint: endpoint.keyEnv
          ? `Set ${endpoint.keyEnv} to a valid key in the environment of every sidecar and restart them (keys are read when a model is loaded), then superduper.retry() the listener.`
          : 'Name the environment variable holding the key in config.api_key_env.',
      });
    }
    // 400, 413 and 422 are how these APIs reject an input (too long, empty...);
    // anything else (404 for an unknown model or a wrong base_url) is the setup.
    const aboutInput = status === 400 || status === 413 || status === 422;
    throw new SuperduperError(`${endpoint.label}: ${where} rejected the request to ${url} (HTTP ${status}): ${message}`, {
      code: aboutInput ? 'api_input' : 'api_setup',
      hint: aboutInput ? undefined : 'Check config.model and config.base_url.',
    });
  }
}

/** The caller aborted (code "aborted"): said once, whatever the request was doing. */
export function abortedRequest(endpoint: ApiEndpoint, signal: AbortSignal): SuperduperError {
  return new SuperduperError(`${endpoint.label}: the request to ${endpoint.provider} was aborted`, { code: 'aborted', cause: signal.reason });
}

function unavailable(endpoint: ApiEndpoint, what: string, retries: number, cause?: unknown): SuperduperError {
  return new SuperduperError(`${endpoint.label}: ${what}${retries > 0 ? ` (after ${retries} ${retries === 1 ? 'retry' : 'retries'})` : ''}`, {
    code: 'api_unavailable',
    cause,
  });
}

/** Exponential, with jitter so that sidecars rate-limited together do not retry together. */
function backoffMs(attempt: number): number {
  const base = Math.min(FIRST_BACKOFF_MS * 2 ** attempt, MAX_BACKOFF_MS);
  return Math.round(base * (0.75 + Math.random() * 0.25));
}

/** Retry-After is either seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const value = header.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The message in an error body, in the shapes OpenAI, Anthropic, Cohere and their imitators use. */
function apiMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown; detail?: unknown };
    const error = body?.error as { message?: unknown } | string | undefined;
    const message = typeof error === 'string' ? error : (error?.message ?? body?.message ?? body?.detail);
    if (typeof message === 'string' && message !== '') return message;
  } catch {
    // Not JSON (a proxy's HTML page, say): quote it.
  }
  return text.trim() === '' ? '(empty body)' : quote(text);
}

export function quote(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

export function isTimeout(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

/** fetch says "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND...) is in its cause. */
export function networkMessage(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  return [(error as Error)?.message, cause?.code ?? cause?.message].filter(Boolean).join(': ');
}

/** An answer that parsed but is not shaped as the API documents (a wrong base_url, an incompatible server). */
export function unexpectedAnswer(endpoint: ApiEndpoint, expected: string, body: unknown): SuperduperError {
  return new SuperduperError(`${endpoint.label}: ${endpoint.provider} at ${endpoint.baseUrl} answered without ${expected}: ${quote(JSON.stringify(body) ?? '')}`, {
    code: 'api_response',
    hint: 'Check config.base_url: it must point at a server speaking this API.',
  });
}
