// The values SQL and TypeScript share (sql/constants.json): written into SQL text
// where it says @{group.name}, and exported to TypeScript. Used by
// build-sql-module.mjs. No value is typed twice, so none can drift.
//
// Why @{...}: no SQL token starts with "@{" (outside a string, { is no token at
// all), the per-listener templates already use {{...}} for values known at apply
// time, and the build refuses any @{ it cannot resolve, so a typo fails the build
// instead of reaching a database.
import { readFileSync } from 'node:fs';

const NAME = /^[a-z][a-z0-9_]*$/;
const PLACEHOLDER = /^@\{([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)\}/;
// What a value must not contain to be written verbatim into SQL, a template or
// a format() string: a quote would end its literal, a dollar-quote delimiter its
// function body, "{{" would be a template placeholder, "%" a format() one.
const UNSAFE = [
  [/'/, 'a quote'],
  [/\$([A-Za-z_][A-Za-z0-9_]*)?\$/, 'a dollar-quote delimiter'],
  [/\{\{|\}\}/, '"{{" or "}}"'],
  [/@\{/, '"@{"'],
  [/%/, '"%"'],
];

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
// An entry is a value, or {"value": ..., "why": ...}.
const isEntry = (v) => isObject(v) && 'value' in v && Object.keys(v).every((k) => k === 'value' || k === 'why');

/** The tree without "why" fields and {value, why} wrappers. */
function plain(node) {
  if (isEntry(node)) return plain(node.value);
  if (!isObject(node)) return node;
  return Object.fromEntries(Object.entries(node).filter(([k]) => k !== 'why').map(([k, v]) => [k, plain(v)]));
}

function check(node, path) {
  if (isEntry(node)) return check(node.value, path);
  if (isObject(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'why') {
        if (typeof value !== 'string') throw new Error(`sql/constants.json: ${path || '(top)'}.why must be a string`);
        continue;
      }
      if (!NAME.test(key)) throw new Error(`sql/constants.json: "${path ? `${path}.` : ''}${key}": names are lower case, digits and _`);
      check(value, path ? `${path}.${key}` : key);
    }
    return;
  }
  if (!path.includes('.')) throw new Error(`sql/constants.json: "${path}" must be a group (an object)`);
  const ok =
    (typeof node === 'number' && Number.isFinite(node)) ||
    typeof node === 'string' ||
    (Array.isArray(node) && node.every((item) => typeof item === 'string'));
  if (!ok) throw new Error(`sql/constants.json: "${path}" must be a number, a string, an array of strings, or a group`);
  for (const text of [node].flat()) {
    if (typeof text !== 'string') continue;
    for (const [pattern, what] of UNSAFE) {
      if (pattern.test(text)) throw new Error(`sql/constants.json: "${path}" contains ${what}, which cannot be written into SQL text verbatim`);
    }
  }
}

// JSON as people write it: {"a": 1, "b": [1, 2]}.
const spacedJson = (value) =>
  Array.isArray(value)
    ? `[${value.map(spacedJson).join(', ')}]`
    : isObject(value)
      ? `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${spacedJson(v)}`).join(', ')}}`
      : JSON.stringify(value);

/** SQL text for a value: a number as digits, a string as is (inside the quotes the SQL writes), an array as quoted literals, a group as JSON. */
function sqlText(value) {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map((item) => `'${item}'`).join(', ');
  const json = spacedJson(value);
  for (const [pattern, what] of UNSAFE) {
    if (what !== 'a quote' && pattern.test(json)) throw new Error(`sql/constants.json: a group written as JSON contains ${what}`);
  }
  return json;
}

function wrap(text, width) {
  const lines = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return line ? [...lines, line] : lines;
}

export function loadConstants(file) {
  const source = JSON.parse(readFileSync(file, 'utf8'));
  check(source, '');
  const values = plain(source);

  const lookup = (path) => {
    let node = values;
    for (const part of path.split('.')) {
      if (!isObject(node) || !(part in node)) return undefined;
      node = node[part];
    }
    return node;
  };

  /** The SQL text with every @{group.name} replaced; where names the file in errors. */
  function substitute(text, where) {
    let out = '';
    let at = 0;
    for (let i = text.indexOf('@{'); i !== -1; i = text.indexOf('@{', at)) {
      const line = text.slice(0, i).split('\n').length;
      const match = PLACEHOLDER.exec(text.slice(i));
      if (!match) {
        throw new Error(`${where}:${line}: "${text.slice(i, i + 40).split('\n')[0]}" is not a constant placeholder (@{group.name}, see sql/constants.json)`);
      }
      const value = lookup(match[1]);
      if (value === undefined) throw new Error(`${where}:${line}: unknown constant @{${match[1]}} (see sql/constants.json)`);
      out += text.slice(at, i) + sqlText(value);
      at = i + match[0].length;
    }
    return out + text.slice(at);
  }

  /** src/generated/constants.ts: one `as const` export per group, named in capitals, with the "why" texts as doc comments. */
  function typescript() {
    const doc = (node, indent) => {
      const why = isObject(node) && typeof node.why === 'string' ? node.why.replace(/\*\//g, '*\\/') : undefined;
      if (!why) return '';
      const lines = wrap(why, 100 - indent.length - 3);
      if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
      return `${indent}/**\n${lines.map((line) => `${indent} * ${line}\n`).join('')}${indent} */\n`;
    };
    const literal = (node, indent) => {
      const value = isEntry(node) ? node.value : node;
      if (!isObject(value)) return JSON.stringify(value).replace(/","/g, '", "');
      const inner = `${indent}  `;
      const lines = Object.entries(value)
        .filter(([key]) => key !== 'why')
        .map(([key, child]) => `${doc(child, inner)}${inner}${key}: ${literal(child, inner)},\n`);
      return `{\n${lines.join('')}${indent}}`;
    };
    const groups = Object.entries(source)
      .filter(([key]) => key !== 'why')
      .map(([key, group]) => `${doc(group, '')}export const ${key.toUpperCase()} = ${literal(group, '')} as const;\n`);
    return (
      `// DO NOT EDIT. Generated by scripts/build-sql-module.mjs from sql/constants.json.\n` +
      (typeof source.why === 'string' ? `//\n${wrap(source.why, 97).map((line) => `// ${line}\n`).join('')}` : '') +
      `\n${groups.join('\n')}`
    );
  }

  return { substitute, typescript };
}
