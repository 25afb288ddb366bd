import { SuperduperError } from '../../errors.js';

/**
 * Turns a row into an LLM prompt and the completion into the row's output.
 *
 * config.prompt      "Summarise: {body}". {name} is filled from the row: an object
 *                    row (several key columns) by column name; a single value fills
 *                    the prompt's only placeholder. Braces around anything with a
 *                    quote in it are literal (so a JSON example needs no escaping);
 *                    {{ and }} are a literal { and }. Without a prompt the row itself
 *                    is the message.
 * config.system      the system message.
 * config.postprocess {"json": true} parses the completion as JSON (a ```json fenced
 *                    block is accepted); {"field": "a.b"} also picks that field.
 */
export interface Prompting {
  system: string | undefined;
  /** The completion is the output as it is (no postprocess), so it can be streamed in pieces. */
  raw: boolean;
  render(input: unknown): string;
  finish(completion: string): unknown;
}

const TOKEN = /\{\{|\}\}|\{([^{}"'\n]+)\}/g;

export function prompting(label: string, config: Record<string, unknown>): Prompting {
  const fail = (message: string): never => {
    throw new SuperduperError(`${label}: ${message}`);
  };
  const template = config.prompt;
  if (template !== undefined && (typeof template !== 'string' || template === '')) fail('config.prompt must be a non-empty string');
  const system = config.system;
  if (system !== undefined && typeof system !== 'string') fail('config.system must be a string');
  const placeholders = template === undefined ? [] : [...new Set([...(template as string).matchAll(TOKEN)].flatMap((m) => (m[1] ? [m[1]] : [])))];
  if (template !== undefined && placeholders.length === 0) {
    fail('config.prompt has no {placeholder} for the row\'s value, e.g. "Summarise: {body}"');
  }
  const postprocess = config.postprocess === undefined ? {} : config.postprocess;
  if (typeof postprocess !== 'object' || postprocess === null || Array.isArray(postprocess)) fail('config.postprocess must be an object');
  const { json, field, ...unknown } = postprocess as { json?: unknown; field?: unknown };
  if (Object.keys(unknown).length > 0) fail(`unknown config.postprocess field "${Object.keys(unknown)[0]}" (known: json, field)`);
  if (json !== undefined && typeof json !== 'boolean') fail('config.postprocess.json must be true or false');
  if (field !== undefined && (typeof field !== 'string' || field === '')) fail('config.postprocess.field must be a dot path, e.g. "label" or "scores.positive"');

  const render = (input: unknown): string => {
    if (template === undefined) return typeof input === 'string' ? input : JSON.stringify(input);
    const row = isObject(input) ? input : undefined;
    if (!row && placeholders.length > 1) {
      fail(`the prompt has placeholders ${placeholders.map((p) => `{${p}}`).join(', ')} but the row is one value: key the listener by those columns`);
    }
    return (template as string).replace(TOKEN, (token, name: string | undefined) => {
      if (!name) return token[0]!;
      if (!row) return text(input);
      if (!(name in row)) fail(`the prompt's placeholder {${name}} is not a column of the row (it has ${Object.keys(row).join(', ')})`);
      return text(row[name]);
    });
  };

  const finish = (completion: string): unknown => {
    if (!json && field === undefined) return completion;
    let parsed: unknown;
    try {
      parsed = JSON.parse(unfence(completion));
    } catch (error) {
      fail(`the completion is not JSON (${(error as Error).message}); it starts ${start(completion)}`);
    }
    if (field === undefined) return parsed;
    let value: unknown = parsed;
    for (const step of (field as string).split('.')) {
      if (!isObject(value) && !Array.isArray(value)) value = undefined;
      else value = (value as Record<string, unknown>)[step];
      if (value === undefined) fail(`the completion has no field "${field}" (config.postprocess.field); it starts ${start(completion)}`);
    }
    return value;
  };

  return { system: system as string | undefined, raw: !json && field === undefined, render, finish };
}

/** The content of the first ``` fenced block, if any: models wrap JSON in one when asked not to. */
function unfence(completion: string): string {
  const fenced = /```[a-zA-Z]*[ \t]*\r?\n?([\s\S]*?)```/.exec(completion);
  return (fenced ? fenced[1]! : completion).trim();
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  return value instanceof Date ? value.toISOString() : JSON.stringify(value);
}

function start(completion: string): string {
  return JSON.stringify(completion.length > 120 ? `${completion.slice(0, 120)}…` : completion);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
