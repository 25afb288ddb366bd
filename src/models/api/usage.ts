import { EventEmitter } from 'node:events';
import type { ApiEndpoint } from './http.js';

/**
 * What API model calls cost, as they happen: every request (with how it
 * ended), every retry, and the tokens each answer says it counted. Emitted
 * here and nowhere else (http.ts); a sidecar's metrics (src/sidecar/metrics.ts)
 * listen. Process-wide: API models are loaded once per process, whoever calls them.
 */
export interface ApiUsage {
  /** The superduper model (its name), the provider and the provider's model id. */
  model: string;
  provider: string;
  apiModel: string;
}

export interface ApiUsageEvents {
  /** outcome: "ok", or the error's code (api_unavailable, api_auth, api_input, api_setup, api_response, aborted). */
  request: [ApiUsage & { outcome: string }];
  retry: [ApiUsage];
  tokens: [ApiUsage & { input: number; output: number }];
}

export const apiUsage = new EventEmitter<ApiUsageEvents>();

export function usageOf(endpoint: ApiEndpoint): ApiUsage {
  return { model: endpoint.model, provider: endpoint.provider, apiModel: endpoint.apiModel };
}

/**
 * The tokens an answer says it counted, in each provider's own shape:
 * OpenAI `usage.prompt_tokens` / `completion_tokens`, Anthropic
 * `usage.input_tokens` / `output_tokens`, Cohere `meta.billed_units.input_tokens`
 * / `output_tokens`. Undefined when it says nothing (a local server may not).
 */
export function tokensOf(answer: unknown): { input: number; output: number } | undefined {
  const body = answer as {
    usage?: { prompt_tokens?: unknown; completion_tokens?: unknown; input_tokens?: unknown; output_tokens?: unknown };
    meta?: { billed_units?: { input_tokens?: unknown; output_tokens?: unknown } };
  } | null;
  const count = (...values: unknown[]) => values.reduce<number>((sum, value) => sum + (typeof value === 'number' && Number.isFinite(value) ? value : 0), 0);
  const usage = body?.usage;
  const billed = body?.meta?.billed_units;
  if (usage && typeof usage === 'object') {
    return { input: count(usage.prompt_tokens, usage.input_tokens), output: count(usage.completion_tokens, usage.output_tokens) };
  }
  if (billed && typeof billed === 'object') return { input: count(billed.input_tokens), output: count(billed.output_tokens) };
  return undefined;
}

/**
 * Published prices, in US dollars per million tokens (input, output), of some
 * models the providers list on their pricing pages (openai.com/api/pricing,
 * anthropic.com/pricing, cohere.com/pricing), as of 2025. An estimate: prices
 * change, batch and cached prices differ, and a model not listed here has no
 * cost metric (docs/operations.md).
 */
const PRICES: Record<string, Record<string, [number, number]>> = {
  openai: {
    'text-embedding-3-small': [0.02, 0],
    'text-embedding-3-large': [0.13, 0],
    'text-embedding-ada-002': [0.1, 0],
    'gpt-4o-mini': [0.15, 0.6],
    'gpt-4o': [2.5, 10],
  },
  anthropic: {
    'claude-3-5-haiku-latest': [0.8, 4],
    'claude-3-5-sonnet-latest': [3, 15],
  },
  cohere: {
    'embed-english-v3.0': [0.1, 0],
    'embed-multilingual-v3.0': [0.1, 0],
  },
};

/** What tokens cost by the published price of the provider's model id, or undefined where none is known. */
export function estimatedCostUsd(usage: ApiUsage, tokens: { input: number; output: number }): number | undefined {
  const price = PRICES[usage.provider]?.[usage.apiModel];
  return price ? (tokens.input * price[0] + tokens.output * price[1]) / 1_000_000 : undefined;
}
