import { SuperduperError } from '../errors.js';

/**
 * Application templates rendered in TypeScript, for backends with no
 * server-side functions to do it (MongoDB). The rules and the messages are
 * those of sql/functions/041_application_templates.sql, which PostgreSQL and
 * the embedded database use: a string that is one placeholder alone takes the
 * value with its type; elsewhere the value's text is put in.
 */
const TYPES = ['text', 'table', 'column', 'model', 'integer', 'number', 'boolean'];
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const WHOLE = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;
const ANY = /\{\{\s*([^{}]*?)\s*\}\}/g;

type Json = unknown;

/** The template (its "variables", its "values" left out) rendered with the values: the spec, the template, the values used. */
export function renderTemplate(spec: Record<string, unknown>): { spec: Record<string, unknown>; template: Record<string, unknown>; values: Record<string, Json> } {
  const label = typeof spec.name === 'string' ? spec.name : '(no name)';
  const { values: given, ...template } = spec;
  const values = templateValues(label, spec.variables, given);
  const { variables: _variables, ...body } = template;
  return { spec: render(label, body, values) as Record<string, unknown>, template, values };
}

function fail(label: string, message: string, hint?: string): never {
  throw new SuperduperError(`superduper.apply: application "${label}": ${message}`, hint ? { hint } : {});
}

function templateValues(label: string, declared: unknown, given: unknown): Record<string, Json> {
  if (typeof declared !== 'object' || declared === null || Array.isArray(declared)) {
    fail(label, `"variables" must be an object of declarations like {"table": {"type": "table", "default": "docs"}}`);
  }
  if (given !== undefined && given !== null && (typeof given !== 'object' || Array.isArray(given))) {
    fail(label, `the values must be an object like {"table": "docs"}, not ${JSON.stringify(given)}`);
  }
  const values: Record<string, Json> = {};
  const provided = (given ?? {}) as Record<string, Json>;
  for (const [name, declaration] of Object.entries(declared as Record<string, unknown>)) {
    if (!NAME.test(name)) fail(label, `variable name '${name}' must be letters, digits and underscores`);
    if (typeof declaration !== 'object' || declaration === null || Array.isArray(declaration)) {
      fail(label, `variable "${name}" must be declared as an object like {"type": "text", "default": ..., "description": ...}`);
    }
    const d = declaration as { type?: unknown; default?: Json; description?: unknown };
    const unknown = Object.keys(d).filter((k) => !['type', 'default', 'description'].includes(k)).sort();
    if (unknown.length > 0) fail(label, `variable "${name}": unknown field(s) ${unknown.map((k) => `'${k}'`).join(', ')}`, 'A variable has "type", "default" and "description".');
    if (d.type !== undefined && !TYPES.includes(String(d.type))) fail(label, `variable "${name}": unknown type ${JSON.stringify(d.type)}`, `Types: ${TYPES.join(', ')}.`);
    values[name] = templateValue(label, name, d, provided[name]);
  }
  const unknown = Object.keys(provided).filter((k) => !(k in (declared as object))).sort();
  if (unknown.length > 0) {
    fail(label, `no variable named ${unknown.map((k) => `'${k}'`).join(', ')}`, `Its variables: ${Object.keys(declared as object).sort().join(', ') || '(none)'}.`);
  }
  return values;
}

function templateValue(label: string, name: string, declared: { type?: unknown; default?: Json; description?: unknown }, given: Json): Json {
  const type = String(declared.type ?? 'text');
  const value = given ?? declared.default;
  if (value === undefined || value === null) {
    fail(label, `variable "${name}" has no value and no default`,
      `Give it a value: --var ${name}=... on the command line, or "values": {"${name}": ...} in the spec${declared.description ? ` (${String(declared.description)})` : ''}.`);
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const bad =
    type === 'integer' ? !/^-?[0-9]+$/.test(text)
    : type === 'number' ? !/^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/.test(text)
    : type === 'boolean' ? text !== 'true' && text !== 'false'
    : (typeof value !== 'string' && typeof value !== 'number') || (['table', 'column', 'model'].includes(type) && text.trim() === '');
  if (bad) {
    const expected = type === 'integer' ? 'an integer' : type === 'number' ? 'a number' : type === 'boolean' ? 'true or false' : type === 'text' ? 'text' : `a ${type} name`;
    fail(label, `variable "${name}" must be ${expected}, not ${JSON.stringify(value)}`);
  }
  return type === 'integer' || type === 'number' ? Number(text) : type === 'boolean' ? text === 'true' : text;
}

function render(label: string, node: Json, values: Record<string, Json>): Json {
  if (Array.isArray(node)) return node.map((item) => render(label, item, values));
  if (typeof node === 'object' && node !== null) {
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, render(label, value, values)]));
  }
  if (typeof node !== 'string' || !node.includes('{{')) return node;
  for (const match of node.matchAll(ANY)) {
    if (!(match[1]! in values)) fail(label, `{{${match[1]}}} names no declared variable`, `Declare it in "variables": {"${match[1]}": {"type": "text", "description": "..."}}.`);
  }
  const whole = WHOLE.exec(node);
  if (whole) return values[whole[1]!];
  return node.replace(ANY, (_, name: string) => {
    const value = values[name];
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}
