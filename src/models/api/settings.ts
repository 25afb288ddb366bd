import { SuperduperError } from '../../errors.js';
import type { ModelRecord } from '../types.js';
import type { ApiEndpoint } from './http.js';
import { SECRETS } from '../../generated/constants.js';

/** What every API runtime reads from a model's config. */
export interface ApiSettings {
  /** The provider's model name (config.model). */
  model: string;
  endpoint: ApiEndpoint;
  /** The key read from the environment, or null when api_key_env is null (a local server). */
  key: string | null;
  /** Inputs per HTTP call (embeddings). */
  batchSize: number;
  /** HTTP calls in flight for this model in this process. */
  concurrency: number;
}

export interface ApiDefaults {
  provider: string;
  /** For messages: "chat", "embeddings"... */
  kind: string;
  baseUrl: string;
  keyEnv: string;
  /** Config fields this kind of model takes besides the common ones. */
  fields: readonly string[];
  /** Embeddings send several inputs per call; chat sends one. */
  batches: boolean;
}

const COMMON_FIELDS = ['model', 'base_url', 'api_key_env', 'concurrency', 'max_retries', 'timeout_ms'];

/**
 * Config fields that would hold a key. The config is stored in the database, where
 * any role reading superduper.models would see it: a key there is refused.
 */
const SECRET_FIELD = new RegExp(SECRETS.config_key, 'i');
const ENV_NAME = new RegExp(SECRETS.env_name);

function modelLabel(model: ModelRecord, kind: string): string {
  return `model "${model.name}" (${model.runtime}${kind === model.runtime ? '' : ` ${kind}`})`;
}

/** Reads and checks the common config, and the key from the environment. Errors say what to change. */
export function apiSettings(model: ModelRecord, defaults: ApiDefaults): ApiSettings {
  const label = modelLabel(model, defaults.kind);
  const config = model.config;
  const fail = (message: string, hint?: string): never => {
    throw new SuperduperError(`${label}: ${message}`, { hint });
  };

  for (const field of Object.keys(config)) {
    if (SECRET_FIELD.test(field)) {
      fail(
        `config.${field} looks like an API key, and keys are not accepted in a model's config (it is stored in the database, readable by anyone who can read superduper.models)`,
        `Remove config.${field}, put the key in an environment variable of the sidecars, and name that variable in config.api_key_env (default ${defaults.keyEnv}).`,
      );
    }
  }
  const known = [...COMMON_FIELDS, ...(defaults.batches ? ['batch_size'] : []), ...defaults.fields];
  for (const field of Object.keys(config)) {
    if (!known.includes(field)) fail(`unknown config field "${field}"`, `Known fields: ${known.join(', ')}.`);
  }

  const name = config.model;
  if (typeof name !== 'string' || name === '') fail('config.model is missing: the name of the model at the provider (e.g. "gpt-4o-mini")');

  const baseUrl = config.base_url ?? defaults.baseUrl;
  if (typeof baseUrl !== 'string' || !/^https?:\/\/[^/]/.test(baseUrl)) fail(`config.base_url must be an http(s) URL; got ${JSON.stringify(baseUrl)}`);

  const keyEnv = config.api_key_env === undefined ? defaults.keyEnv : config.api_key_env;
  let key: string | null = null;
  if (keyEnv !== null) {
    if (typeof keyEnv !== 'string' || !ENV_NAME.test(keyEnv)) {
      // Not quoted back: it may be a key pasted into the wrong field.
      fail(
        'config.api_key_env must be the name of an environment variable (letters, digits and _), not the key itself',
        'If you pasted a key there, remove it from the config and rotate it: the config is stored in the database.',
      );
    }
    key = process.env[keyEnv as string] || null;
    if (key === null) {
      fail(
        `the environment variable ${keyEnv} (config.api_key_env) is not set in this sidecar`,
        `Set ${keyEnv} to your ${defaults.provider} API key in the environment of every sidecar (keys are never stored in the database), or set config.api_key_env to null for a server that needs no key.`,
      );
    }
  }

  return {
    model: name as string,
    key,
    batchSize: integer(config, 'batch_size', 64, 1, fail),
    concurrency: integer(config, 'concurrency', 4, 1, fail),
    endpoint: {
      label,
      provider: defaults.provider,
      model: model.name,
      apiModel: name as string,
      baseUrl: baseUrl as string,
      keyEnv: keyEnv as string | null,
      headers: {},
      timeoutMs: integer(config, 'timeout_ms', 60_000, 1, fail),
      maxRetries: integer(config, 'max_retries', 5, 0, fail),
    },
  };
}

/** A chat model's config.temperature (at least 0) and config.max_tokens (an integer of at least 1), where given. */
export function samplingOptions(label: string, config: Record<string, unknown>): { temperature?: number; maxTokens?: number } {
  return {
    temperature: optionalNumber(label, config, 'temperature', { integer: false, min: 0 }),
    maxTokens: optionalNumber(label, config, 'max_tokens', { integer: true, min: 1 }),
  };
}

/** An optional numeric config field (temperature, max_tokens...), checked. */
export function optionalNumber(
  label: string,
  config: Record<string, unknown>,
  field: string,
  rule: { integer: boolean; min: number },
): number | undefined {
  const value = config[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < rule.min || (rule.integer && !Number.isInteger(value))) {
    throw new SuperduperError(`${label}: config.${field} must be ${rule.integer ? 'an integer' : 'a number'} of at least ${rule.min}; got ${JSON.stringify(value)}`);
  }
  return value;
}

function integer(config: Record<string, unknown>, field: string, fallback: number, min: number, fail: (message: string) => never): number {
  const value = config[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    fail(`config.${field} must be an integer of at least ${min}; got ${JSON.stringify(value)}`);
  }
  return value as number;
}
