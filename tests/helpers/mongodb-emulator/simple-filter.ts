/**
 * Filters of plain comparisons (equality, `$ne`, ranges, `$in`, `$nin`,
 * `$exists`, joined by `$and`/`$or`/`$nor`) matched without mingo. The
 * product's queue and output writes are all of this kind, and a mingo Query
 * copies its whole operator table when built: per write, that was most of the
 * emulator's time. Anything else, and any document where a path meets an
 * array (whose matching rules are mingo's), goes to mingo.
 */
import { compareBson, isPlainDoc, typeRank } from './bson-order.js';

type Doc = Record<string, unknown>;
/** A document's verdict, or undefined when the document needs the full matcher. */
type Test = (doc: Doc) => boolean | undefined;

const COMPARISONS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists']);
const SCALAR_TYPES = new Set(['ObjectId', 'Timestamp']);

/** A value compared by compareBson alone: no regex, array or operator semantics. */
function isSimpleOperand(v: unknown): boolean {
  if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || v instanceof Date) return true;
  if (isPlainDoc(v)) return Object.keys(v).every((k) => !k.startsWith('$') && isSimpleOperand(v[k]));
  const bsonType = (v as { _bsontype?: string } | undefined)?._bsontype;
  return bsonType !== undefined && SCALAR_TYPES.has(bsonType);
}

/** The value at a dotted path; `array` when an array is met on the way or at the end. */
function valueAt(doc: Doc, parts: string[]): unknown {
  let v: unknown = doc;
  for (const part of parts) {
    if (Array.isArray(v)) return ARRAY;
    if (!isPlainDoc(v) || !Object.prototype.hasOwnProperty.call(v, part)) return undefined;
    v = v[part];
  }
  return Array.isArray(v) ? ARRAY : v;
}
const ARRAY = Symbol('array');

function equals(value: unknown, operand: unknown): boolean {
  if (operand === null) return value === null || value === undefined;
  return value !== undefined && compareBson(value, operand) === 0;
}

function comparison(op: string, operand: unknown): ((value: unknown) => boolean) | null {
  switch (op) {
    case '$eq':
      return isSimpleOperand(operand) ? (v) => equals(v, operand) : null;
    case '$ne':
      return isSimpleOperand(operand) ? (v) => !equals(v, operand) : null;
    case '$in':
    case '$nin': {
      if (!Array.isArray(operand) || !operand.every(isSimpleOperand)) return null;
      const any = (v: unknown) => operand.some((o) => equals(v, o));
      return op === '$in' ? any : (v) => !any(v);
    }
    case '$exists':
      return typeof operand === 'boolean' ? (v) => (v !== undefined) === operand : null;
    default: {
      // Ranges compare within one type only ({$lt: 5} never matches a string); null's rules are mingo's.
      if (operand === null || isPlainDoc(operand) || !isSimpleOperand(operand)) return null;
      const rank = typeRank(operand);
      const holds = op === '$gt' ? (c: number) => c > 0 : op === '$gte' ? (c: number) => c >= 0 : op === '$lt' ? (c: number) => c < 0 : (c: number) => c <= 0;
      return (v) => v !== undefined && typeRank(v) === rank && holds(compareBson(v, operand));
    }
  }
}

function fieldTest(path: string, spec: unknown): Test | null {
  const parts = path.split('.');
  if (parts.some((p) => p === '' || p.startsWith('$'))) return null;
  const checks: Array<(value: unknown) => boolean> = [];
  const keys = isPlainDoc(spec) ? Object.keys(spec) : [];
  if (keys.length > 0 && keys[0]!.startsWith('$')) {
    for (const op of keys) {
      if (!COMPARISONS.has(op)) return null;
      const check = comparison(op, (spec as Doc)[op]);
      if (!check) return null;
      checks.push(check);
    }
  } else {
    if (!isSimpleOperand(spec)) return null;
    checks.push((v) => equals(v, spec));
  }
  return (doc) => {
    const value = valueAt(doc, parts);
    if (value === ARRAY) return undefined;
    return checks.every((check) => check(value));
  };
}

function compile(filter: Doc): Test | null {
  const tests: Test[] = [];
  for (const [key, spec] of Object.entries(filter)) {
    if (key === '$and' || key === '$or' || key === '$nor') {
      if (!Array.isArray(spec) || spec.length === 0 || !spec.every(isPlainDoc)) return null;
      const parts = spec.map((sub) => compile(sub as Doc));
      if (parts.some((p) => p === null)) return null;
      const subs = parts as Test[];
      tests.push((doc) => {
        let verdict: boolean | undefined = key === '$or' ? false : true;
        for (const sub of subs) {
          const r = sub(doc);
          if (r === undefined) return undefined;
          if (key === '$and' && !r) return false;
          if (key === '$or' && r) return true;
          if (key === '$nor' && r) return false;
          verdict = key === '$or' ? false : true;
        }
        return verdict;
      });
      continue;
    }
    if (key.startsWith('$')) return null;
    const test = fieldTest(key, spec);
    if (!test) return null;
    tests.push(test);
  }
  return (doc) => {
    for (const test of tests) {
      const r = test(doc);
      if (r !== true) return r;
    }
    return true;
  };
}

/**
 * A matcher for a filter of plain comparisons, or null for any other filter.
 * `full` is the complete matcher, built on first need (a document with arrays).
 */
export function compileSimpleFilter(filter: Doc, full: () => (doc: Doc) => boolean): ((doc: Doc) => boolean) | null {
  const test = compile(filter);
  if (!test) return null;
  let fallback: ((doc: Doc) => boolean) | undefined;
  return (doc) => test(doc) ?? (fallback ??= full())(doc);
}
