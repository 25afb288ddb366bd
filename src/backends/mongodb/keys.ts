import { EJSON } from 'bson';
import type { SourceId } from './documents.js';

/**
 * A document's _id as the core carries keys: text. Relaxed Extended JSON, so
 * that any _id type (ObjectId, string, number, a compound document, whose field
 * order matters to MongoDB) goes there and back unchanged and reads well in
 * status and failures: 42, "abc", {"$oid": "…"}, {"a": 1, "b": 2}.
 */
export function keyText(id: unknown): string {
  // Strings and 32-bit integers, the common _ids besides ObjectId, read the
  // same in JSON; EJSON's walk over the value costs more than the rest of a claim.
  if (typeof id === 'string') return JSON.stringify(id);
  if (isInt32(id)) return String(id);
  return EJSON.stringify(id, { relaxed: true });
}

export function keyValue(text: string): SourceId {
  if (text.startsWith('"')) return JSON.parse(text) as string;
  if (/^-?\d{1,9}$/.test(text) && text !== '-0') return Number(text);
  return EJSON.parse(text, { relaxed: true });
}

function isInt32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= -2147483648 && value <= 2147483647 && !Object.is(value, -0);
}

/**
 * The value at a dotted path, as MongoDB reads one: through nested documents,
 * by position in an array ("tags.0"), and across an array of documents
 * ("authors.name" is every author's name). Missing: undefined.
 */
export function valueAt(document: unknown, path: string): unknown {
  let values: unknown[] = [document];
  let fannedOut = false;
  for (const part of path.split('.')) {
    const next: unknown[] = [];
    for (const value of values) {
      if (Array.isArray(value)) {
        if (/^\d+$/.test(part)) next.push(value[Number(part)]);
        else {
          fannedOut = true;
          for (const element of value) if (isPlainObject(element) && part in element) next.push(element[part]);
        }
      } else if (isPlainObject(value) && part in value) next.push(value[part]);
    }
    values = next.filter((v) => v !== undefined);
    if (values.length === 0) return undefined;
  }
  return fannedOut ? values : values[0];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && (value.constructor === Object || Object.getPrototypeOf(value) === null);
}

/**
 * Whether a change to `changed` (a path from an update event's updatedFields or
 * removedFields) can change the value at `path`: either is a prefix of the other
 * ("a" changes "a.b"; "a.b.c" changes "a.b"). A positional part of either
 * ("tags.3") is a change to the array, so it is compared up to there.
 */
export function touches(changed: string, path: string): boolean {
  const a = changed.split('.');
  const b = path.split('.');
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (/^\d+$/.test(a[i]!) || /^\d+$/.test(b[i]!)) return true;
    if (a[i] !== b[i]) return false;
  }
  return true;
}

/**
 * The field paths a MongoDB filter reads, for deciding whether an update can
 * move a document into or out of it; undefined when it cannot be told
 * ($where, $expr, $text, $jsonSchema...): then every update counts.
 */
export function filterPaths(filter: Record<string, unknown>): string[] | undefined {
  const paths: string[] = [];
  const walk = (node: Record<string, unknown>): boolean => {
    for (const [field, value] of Object.entries(node)) {
      if (field === '$and' || field === '$or' || field === '$nor') {
        if (!Array.isArray(value)) return false;
        for (const part of value) if (!isPlainObject(part) || !walk(part)) return false;
      } else if (field.startsWith('$')) {
        return false;
      } else {
        paths.push(field);
      }
    }
    return true;
  };
  return walk(filter) ? paths : undefined;
}
