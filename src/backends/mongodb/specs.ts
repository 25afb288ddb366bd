import { createHash } from 'node:crypto';
import { SuperduperError } from '../../errors.js';
import { IDENTITY, LISTENERS, RUNTIMES, SECRETS, SPEC_VERSIONS } from '../../generated/constants.js';
import type { OutputSpec } from '../../models/types.js';
import { PREFIX } from './names.js';

/**
 * Component specs checked before anything is written, with the messages the
 * SQL layer gives (sql/functions/020_models.sql, 030_listener_spec.sql,
 * 070_vector_indexes.sql): MongoDB has no functions to put them in, so the
 * applying process checks them (TypeScript's apply, or the sidecar that applies
 * a spec inserted from mongosh).
 */

export interface ModelSpec {
  type: 'model';
  name: string;
  runtime: string;
  output: OutputSpec;
  config: Record<string, unknown>;
  artifact: string | null;
}

export interface ListenerSpec {
  type: 'listener';
  name: string;
  model: string;
  collection: string;
  keys: string[];
  filter: Record<string, unknown> | null;
  settings: ListenerSettings;
}

export type ListenerSettings = { [K in keyof typeof LISTENERS.settings]: number };

export interface VectorIndexSpec {
  type: 'vector_index';
  name: string;
  listener: string;
  query_model: string | null;
  compatible_listener: string | null;
  measure: 'cosine' | 'l2' | 'ip';
}

export type ComponentSpec = ModelSpec | ListenerSpec | VectorIndexSpec;

export const COMPONENT_TYPES = ['model', 'listener', 'vector_index'] as const;

/** A spec's hash, for "unchanged": the hash of its normalised form. */
export function specHash(spec: ComponentSpec): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex');
}

/**
 * A model's identity: its hash without the config fields that say how it is
 * called, not what it computes (IDENTITY.model, shared with the SQL layer's
 * sql/functions/044_identity.sql). The same identity keeps the model's version
 * and its listeners' outputs.
 */
export function modelIdentity(spec: ModelSpec): string {
  const config = { ...spec.config };
  for (const path of IDENTITY.model) delete config[path.replace(/^config\./, '')];
  return specHash({ ...spec, config });
}

export function parseSpec(raw: unknown): ComponentSpec {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SuperduperError(`superduper.apply: a spec must be a JSON object, not ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}`);
  }
  const spec = raw as Record<string, unknown>;
  const type = spec.type;
  const name = typeof spec.name === 'string' ? spec.name : '?';
  if (type === 'trainer' || type === 'schedule') {
    throw new SuperduperError(`superduper.apply: ${type} '${name}': ${type}s run on PostgreSQL and the embedded database; MongoDB has none yet`, {
      hint: `Known types on MongoDB: ${COMPONENT_TYPES.join(', ')}. docs/mongodb.md lists what MongoDB has.`,
    });
  }
  if (typeof type !== 'string' || !(COMPONENT_TYPES as readonly string[]).includes(type)) {
    throw new SuperduperError(`superduper.apply: unknown component type ${typeof type === 'string' ? `'${type}'` : '(missing "type")'}`, {
      hint: `Known types on MongoDB: ${COMPONENT_TYPES.join(', ')}.`,
    });
  }
  const version = spec.spec_version;
  const current = SPEC_VERSIONS[type as keyof typeof SPEC_VERSIONS];
  if (version !== undefined && (typeof version !== 'number' || !Number.isInteger(version) || version < 1)) {
    throw new SuperduperError(`superduper.apply: ${type} ${name}: "spec_version" must be a whole number from 1, not ${JSON.stringify(version)}`, {
      hint: `Omit it for the current version (${current}).`,
    });
  }
  if (typeof version === 'number' && version > current) {
    throw new SuperduperError(`superduper.apply: ${type} ${name}: spec_version ${version} is newer than this superduper reads (up to ${current})`);
  }
  if (type === 'model') return parseModel(spec);
  if (type === 'listener') return parseListener(spec);
  return parseVectorIndex(spec);
}

function parseModel(spec: Record<string, unknown>): ModelSpec {
  const name = spec.name;
  if (typeof name !== 'string' || name === '' || name.length > 63) throw new SuperduperError('superduper: a model needs a "name" of 1 to 63 characters');
  const runtimes: readonly string[] = RUNTIMES.names;
  const runtime = spec.runtime;
  if (typeof runtime !== 'string') throw new SuperduperError(`superduper: model "${name}": "runtime" is missing`, { hint: `One of: ${runtimes.join(', ')}` });
  if (!runtimes.includes(runtime)) throw new SuperduperError(`superduper: model "${name}": unknown runtime "${runtime}"`, { hint: `One of: ${runtimes.join(', ')}` });
  const output = parseOutput(name, spec.output);
  const config = spec.config ?? {};
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new SuperduperError(`superduper: model "${name}": "config" must be a JSON object`);
  const secret = new RegExp(SECRETS.config_key, 'i');
  if (Object.keys(config).some((key) => secret.test(key))) {
    throw new SuperduperError(`superduper: model "${name}": config holds an API key or secret; keys are never stored in the database`, {
      hint: 'Put the key in an environment variable of the sidecars and name it in config.api_key_env.',
    });
  }
  const envName = (config as Record<string, unknown>).api_key_env;
  if (typeof envName === 'string' && !new RegExp(SECRETS.env_name).test(envName)) {
    throw new SuperduperError(`superduper: model "${name}": config.api_key_env must name an environment variable (letters, digits and _), not hold the key itself`, {
      hint: 'If you pasted a key there, rotate it.',
    });
  }
  const artifact = spec.artifact ?? null;
  if (artifact !== null && (typeof artifact !== 'string' || !/^[0-9a-f]{64}$/.test(artifact))) {
    throw new SuperduperError(`superduper: model "${name}": "artifact" must be the SHA-256 of a stored file`);
  }
  return { type: 'model', name, runtime, output, config: config as Record<string, unknown>, artifact: artifact as string | null };
}

function parseOutput(model: string, output: unknown): OutputSpec {
  if (typeof output !== 'object' || output === null) {
    throw new SuperduperError(`superduper: model "${model}": "output" is missing, e.g. {"type": "vector", "dim": 384}`);
  }
  const { type, dim, flatten } = output as { type?: unknown; dim?: unknown; flatten?: unknown };
  if (flatten === true) {
    throw new SuperduperError(`superduper: model "${model}": outputs that are lists ("flatten": true, one output per element) are not supported on MongoDB yet`, {
      hint: 'Declare {"type": "jsonb"} to keep each document\'s list as one output (a chunker: chunkerModel({..., flatten: false})).',
    });
  }
  if (type === 'vector') {
    if (typeof dim !== 'number') throw new SuperduperError(`superduper: model "${model}": a vector output needs its dimension, e.g. {"type": "vector", "dim": 384}`);
    if (!Number.isInteger(dim) || dim < 1 || dim > 16000) throw new SuperduperError(`superduper: model "${model}": vector dimension ${dim} is out of range (1 to 16000)`);
    return { type, dim };
  }
  if (type === 'jsonb' || type === 'text' || type === 'float' || type === 'integer' || type === 'boolean') return { type };
  throw new SuperduperError(`superduper: model "${model}": unknown output type ${typeof type === 'string' ? `'${type}'` : 'NULL'}`, {
    hint: 'Use one of vector (with dim), jsonb, text, float, integer, boolean.',
  });
}

const LISTENER_FIELDS = ['type', 'spec_version', 'name', 'model', 'collection', 'table', 'keys', 'filter', 'settings'];

function parseListener(spec: Record<string, unknown>): ListenerSpec {
  const name = spec.name;
  if (typeof name !== 'string' || name === '') throw new SuperduperError('superduper: a listener needs a "name"');
  // The outputs view is superduper.outputs.<name>; a collection name has at most
  // 255 bytes with its database's name, and a dot in a name would read as a path.
  if (Buffer.byteLength(name) > 48) throw new SuperduperError(`superduper: listener name "${name}" is too long (${Buffer.byteLength(name)} bytes; at most 48)`);
  if (/[.$\0]/.test(name)) throw new SuperduperError(`superduper: listener name "${name}" may not contain ".", "$" or NUL`, { hint: 'It names the collection superduper.outputs.<name>.' });
  const unknown = Object.keys(spec).find((field) => !LISTENER_FIELDS.includes(field));
  if (unknown) throw new SuperduperError(`superduper: listener "${name}": unknown field "${unknown}"`, { hint: `Fields: name, model, collection, keys, filter, settings.` });
  const collection = spec.collection ?? spec.table;
  if (typeof collection !== 'string' || collection === '') throw new SuperduperError(`superduper: listener "${name}": "collection" is missing`);
  if (collection.startsWith(PREFIX) || collection.startsWith('system.') || collection.includes('$')) {
    throw new SuperduperError(`superduper: listener "${name}": collection "${collection}" cannot be listened to`, {
      hint: `Collections named ${PREFIX}* are superduper's own (listeners on other listeners' outputs are not supported on MongoDB yet), system.* are the server's.`,
    });
  }
  const keys = spec.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new SuperduperError(`superduper: listener "${name}": "keys" must be a non-empty array of field paths`);
  if (!keys.every((key) => typeof key === 'string' && key !== '' && !key.startsWith('$') && !key.split('.').includes(''))) {
    throw new SuperduperError(`superduper: listener "${name}": every key must be a field path (a non-empty string such as "body" or "meta.title")`);
  }
  if (new Set(keys).size !== keys.length) throw new SuperduperError(`superduper: listener "${name}": a key field is listed twice`);
  const filter = spec.filter ?? null;
  if (filter !== null && (typeof filter !== 'object' || Array.isArray(filter))) {
    throw new SuperduperError(`superduper: listener "${name}": "filter" must be a MongoDB query document, e.g. {"status": "published"}`, {
      hint: typeof filter === 'string' ? 'A SQL expression is a PostgreSQL filter; on MongoDB write the query as an object.' : undefined,
    });
  }
  const model = spec.model ?? LISTENERS.default_model;
  if (typeof model !== 'string' || model === '') throw new SuperduperError(`superduper: listener "${name}": "model" must be a model's name`);
  return { type: 'listener', name, model, collection, keys: keys as string[], filter: filter as Record<string, unknown> | null, settings: parseSettings(name, spec.settings) };
}

function parseSettings(listener: string, raw: unknown): ListenerSettings {
  const defaults = Object.fromEntries(Object.entries(LISTENERS.settings).map(([key, value]) => [key, value])) as ListenerSettings;
  if (raw === undefined || raw === null) return defaults;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new SuperduperError(`superduper: listener "${listener}": "settings" must be a JSON object`);
  const settings = { ...defaults };
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in defaults)) {
      throw new SuperduperError(`superduper: listener "${listener}": unknown setting "${key}"`, { hint: `Known settings: ${Object.keys(defaults).sort().join(', ')}` });
    }
    if (typeof value !== 'number' || !(value > 0)) {
      throw new SuperduperError(`superduper: listener "${listener}": setting "${key}" must be a positive number, not ${JSON.stringify(value)}`);
    }
    settings[key as keyof ListenerSettings] = value;
  }
  return settings;
}

const VECTOR_INDEX_FIELDS = ['type', 'spec_version', 'name', 'listener', 'query_model', 'compatible_listener', 'measure', 'index'];

function parseVectorIndex(spec: Record<string, unknown>): VectorIndexSpec {
  const name = spec.name;
  if (typeof name !== 'string' || name === '' || Buffer.byteLength(name) > 48) throw new SuperduperError('superduper: a vector index needs a "name" of 1 to 48 bytes');
  const unknown = Object.keys(spec).find((field) => !VECTOR_INDEX_FIELDS.includes(field));
  if (unknown) {
    throw new SuperduperError(`superduper: vector index "${name}": unknown field "${unknown}"`, { hint: 'Fields: name, listener, query_model or compatible_listener, measure.' });
  }
  if (typeof spec.listener !== 'string') {
    throw new SuperduperError(`superduper: vector index "${name}": unknown listener (missing "listener")`, { hint: 'The listener whose outputs are the vectors to search; apply it first.' });
  }
  if (spec.query_model !== undefined && spec.compatible_listener !== undefined) {
    throw new SuperduperError(`superduper: vector index "${name}": give query_model or compatible_listener, not both`);
  }
  const measure = spec.measure ?? 'cosine';
  if (measure !== 'cosine' && measure !== 'l2' && measure !== 'ip') throw new SuperduperError(`superduper: unknown measure '${String(measure)}'`, { hint: 'Use cosine, l2 or ip.' });
  return {
    type: 'vector_index',
    name,
    listener: spec.listener,
    query_model: typeof spec.query_model === 'string' ? spec.query_model : null,
    compatible_listener: typeof spec.compatible_listener === 'string' ? spec.compatible_listener : null,
    measure,
  };
}
