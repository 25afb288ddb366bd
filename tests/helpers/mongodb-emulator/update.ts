/**
 * Update documents: operators (through mingo's updater, with `$setOnInsert`
 * and `$currentDate` handled here), replacements and pipelines; the seed of an
 * upsert; and the change-stream `updateDescription` of what changed.
 */
import { ObjectId, Timestamp } from 'bson';
import { update as mingoUpdate } from 'mingo/updater';
import type { Modifier } from 'mingo/updater';
import { compareBson, isPlainDoc } from './bson-order.js';
import type { UpdateDescription } from './change-log.js';
import { CommandError, fail } from './errors.js';
import { formatValue } from './format.js';
import { mingoOptions, runPipeline } from './query.js';
import { applySimpleUpdate, sameKind } from './simple-update.js';

export type Doc = Record<string, unknown>;

const OPERATORS = new Set([
  '$set',
  '$unset',
  '$inc',
  '$mul',
  '$min',
  '$max',
  '$push',
  '$addToSet',
  '$pull',
  '$pullAll',
  '$pop',
  '$rename',
  '$setOnInsert',
  '$currentDate',
  '$bit',
]);

export type UpdateKind = 'operators' | 'replacement' | 'pipeline';

export function updateKind(u: unknown): UpdateKind {
  if (Array.isArray(u)) return 'pipeline';
  if (!isPlainDoc(u)) fail('FailedToParse', 'Update argument must be either an object or an array');
  const keys = Object.keys(u);
  const ops = keys.filter((k) => k.startsWith('$'));
  if (ops.length === 0) return 'replacement';
  if (ops.length !== keys.length) fail('FailedToParse', `Unknown modifier: ${keys.find((k) => !k.startsWith('$'))}. Expected a valid update modifier or pipeline-style update specified as an array`);
  for (const op of ops) {
    if (!OPERATORS.has(op)) fail('FailedToParse', `Unknown modifier: ${op}. Expected a valid update modifier or pipeline-style update specified as an array`);
  }
  return 'operators';
}

export interface ApplyOptions {
  arrayFilters?: Doc[];
  /** The update's filter, for the positional `$` operator. */
  query?: Doc;
  /** An upsert's insert: `$setOnInsert` applies. */
  inserting?: boolean;
  now: Timestamp;
}

/** The updated document, and whether anything changed. `doc` may be modified in place. */
export function applyUpdate(doc: Doc, u: unknown, opts: ApplyOptions): { doc: Doc; changed: boolean } {
  const kind = updateKind(u);
  const id = doc._id;
  let out: Doc;
  let changed: boolean;
  if (kind === 'replacement') {
    const repl = u as Doc;
    if ('_id' in repl && doc._id !== undefined && compareBson(repl._id, doc._id) !== 0) {
      fail('ImmutableField', `After applying the update, the (immutable) field '_id' was found to have been altered to _id: ${formatValue(repl._id)}`);
    }
    out = { _id: doc._id ?? repl._id };
    for (const [k, v] of Object.entries(repl)) if (k !== '_id') out[k] = v;
    changed = compareBson(out, doc) !== 0;
  } else if (kind === 'pipeline') {
    const [res] = runPipeline([doc], u as Doc[]);
    if (!res) fail('BadValue', 'the update pipeline produced no document');
    out = res;
    changed = compareBson(out, doc) !== 0;
  } else {
    const mod: Doc = {};
    for (const [op, arg] of Object.entries(u as Doc)) {
      if (op === '$setOnInsert') {
        if (opts.inserting) mod.$set = { ...((mod.$set as Doc) ?? {}), ...(arg as Doc) };
      } else if (op === '$currentDate') {
        // Timestamps come from the emulator's clock, which mingo does not have.
        const set: Doc = (mod.$set as Doc) ?? {};
        for (const [field, how] of Object.entries(arg as Doc)) {
          set[field] = isPlainDoc(how) && how.$type === 'timestamp' ? opts.now : new Date();
        }
        mod.$set = set;
      } else if (op === '$set') {
        mod.$set = { ...((mod.$set as Doc) ?? {}), ...(arg as Doc) };
      } else {
        mod[op] = arg;
      }
    }
    if (Object.keys(mod).length === 0) return { doc, changed: false };
    const simple = applySimpleUpdate(doc, mod);
    if (simple) return { doc, changed: simple.changed };
    const before = opts.inserting ? null : structuredCopy(doc);
    try {
      const paths = mingoUpdate(doc, mod as Modifier<Doc>, opts.arrayFilters, opts.query, { queryOptions: mingoOptions() });
      changed = paths.length > 0 && (before === null || compareBson(before, doc) !== 0);
    } catch (e) {
      if (e instanceof CommandError) throw e;
      const msg = (e as Error).message;
      if (/conflict/i.test(msg)) fail('ConflictingUpdateOperators', msg.replace(/^updating/, 'Updating'));
      if (/immutable field '_id'/.test(msg)) fail('ImmutableField', "Performing an update on the path '_id' would modify the immutable field '_id'");
      fail('BadValue', msg);
    }
    out = doc;
  }
  if (id !== undefined && compareBson(out._id, id) !== 0) {
    fail('ImmutableField', "Performing an update on the path '_id' would modify the immutable field '_id'");
  }
  if (out._id === undefined && id !== undefined) out = { _id: id, ...out };
  return { doc: out, changed };
}

/** A copy deep enough for comparing before and after: plain objects and arrays copied, bson values shared (they are immutable). */
function structuredCopy<T>(v: T): T {
  if (Array.isArray(v)) return v.map(structuredCopy) as T;
  if (isPlainDoc(v)) {
    const o: Doc = {};
    for (const k of Object.keys(v)) o[k] = structuredCopy(v[k]);
    return o as T;
  }
  return v;
}

/** The fields an upsert's new document starts from: the filter's equalities. */
export function upsertSeed(filter: Doc): Doc {
  const seed: Doc = {};
  const take = (f: Doc) => {
    for (const [k, v] of Object.entries(f)) {
      if (k === '$and' && Array.isArray(v)) {
        for (const sub of v) if (isPlainDoc(sub)) take(sub);
        continue;
      }
      if (k.startsWith('$')) continue;
      let value: unknown;
      if (isPlainDoc(v) && Object.keys(v).some((x) => x.startsWith('$'))) {
        if ('$eq' in v) value = v.$eq;
        else if (Array.isArray(v.$in) && v.$in.length === 1) value = v.$in[0];
        else continue;
      } else value = v;
      if (value instanceof RegExp) continue;
      setPath(seed, k, structuredCopy(value));
    }
  };
  take(filter);
  return seed;
}

function setPath(doc: Doc, path: string, value: unknown): void {
  const parts = path.split('.');
  let at: Doc = doc;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i] as string;
    if (!isPlainDoc(at[p])) at[p] = {};
    at = at[p] as Doc;
  }
  at[parts[parts.length - 1] as string] = value;
}

/** Moves `_id` first and generates one when missing, as the server stores documents. */
export function withIdFirst(doc: Doc): Doc {
  const keys = Object.keys(doc);
  if (keys[0] === '_id') return doc;
  const out: Doc = { _id: doc._id === undefined ? new ObjectId() : doc._id };
  for (const k of keys) if (k !== '_id') out[k] = doc[k];
  return out;
}

/**
 * What a change stream reports for an update: set fields by dotted path down
 * to the deepest changed subdocument, removed fields, shortened arrays.
 */
export function describeUpdate(before: Doc, after: Doc): UpdateDescription {
  const desc: UpdateDescription = { updatedFields: {}, removedFields: [], truncatedArrays: [] };
  diffDocs(before, after, '', desc);
  return desc;
}

function diffDocs(a: Doc, b: Doc, prefix: string, desc: UpdateDescription): void {
  for (const k of Object.keys(b)) {
    const path = prefix + k;
    if (!Object.prototype.hasOwnProperty.call(a, k)) {
      desc.updatedFields[path] = b[k];
      continue;
    }
    diffValue(a[k], b[k], path, desc);
  }
  for (const k of Object.keys(a)) if (!Object.prototype.hasOwnProperty.call(b, k)) desc.removedFields.push(prefix + k);
}

function diffValue(x: unknown, y: unknown, path: string, desc: UpdateDescription): void {
  if (compareBson(x, y) === 0 && sameKind(x, y)) return;
  if (isPlainDoc(x) && isPlainDoc(y) && Object.keys(y).length > 0 && sameOrderPrefix(x, y)) {
    diffDocs(x, y, `${path}.`, desc);
    return;
  }
  if (Array.isArray(x) && Array.isArray(y) && y.length > 0) {
    if (y.length < x.length) desc.truncatedArrays.push({ field: path, newSize: y.length });
    for (let i = 0; i < y.length; i++) {
      if (i >= x.length) desc.updatedFields[`${path}.${i}`] = y[i];
      else diffValue(x[i], y[i], `${path}.${i}`, desc);
    }
    return;
  }
  desc.updatedFields[path] = y;
}

/** A subdocument whose surviving fields kept their order can be described field by field. */
function sameOrderPrefix(x: Doc, y: Doc): boolean {
  const kept = Object.keys(y).filter((k) => k in x);
  const order = Object.keys(x).filter((k) => k in y);
  return kept.every((k, i) => order[i] === k);
}

