/**
 * Filters, sorts and projections. Matching is mingo's, with a context of our
 * own so that `$type` knows BSON's type names; what the `_id` index can answer
 * (equality, `$in`, ranges) is answered by it, so an `_id`-ordered page over a
 * million documents costs O(log n + page).
 */
import { Long } from 'bson';
import { Aggregator } from 'mingo/aggregator';
import { Context } from 'mingo/core';
import * as accumulatorOps from 'mingo/operators/accumulator';
import * as expressionOps from 'mingo/operators/expression';
import * as pipelineOps from 'mingo/operators/pipeline';
import * as projectionOps from 'mingo/operators/projection';
import * as queryOps from 'mingo/operators/query';
import * as windowOps from 'mingo/operators/window';
import { Query } from 'mingo/query';
import type { Options } from 'mingo/types';
import { deserialize } from 'bson';
import { RawDoc } from './bson-raw.js';
import { compareBson, isPlainDoc, typeRank } from './bson-order.js';
import { CommandError, fail } from './errors.js';
import { pathValues } from './paths.js';
import { compileSimpleFilter } from './simple-filter.js';
import type { Collection, DocRecord, Matcher } from './storage.js';

export type Doc = Record<string, unknown>;

const TYPE_ALIASES: Record<string, (v: unknown) => boolean> = {};
{
  const bt = (v: unknown) => (typeof v === 'object' && v !== null ? ((v as { _bsontype?: string })._bsontype ?? '') : '');
  const isInt32 = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647;
  const defs: [string[], (v: unknown) => boolean][] = [
    // Numbers arrive promoted to JS numbers, so widths are told apart by value: an
    // integral number in int32 range is an int, as the driver would have sent it.
    [['double', '1'], (v) => (typeof v === 'number' && !isInt32(v)) || bt(v) === 'Double'],
    [['string', '2'], (v) => typeof v === 'string'],
    [['object', '3'], (v) => isPlainDoc(v)],
    [['array', '4'], (v) => Array.isArray(v)],
    [['binData', '5'], (v) => bt(v) === 'Binary'],
    [['undefined', '6'], (v) => v === undefined],
    [['objectId', '7'], (v) => bt(v) === 'ObjectId'],
    [['bool', '8'], (v) => typeof v === 'boolean'],
    [['date', '9'], (v) => v instanceof Date],
    [['null', '10'], (v) => v === null],
    [['regex', '11'], (v) => v instanceof RegExp || bt(v) === 'BSONRegExp'],
    [['javascript', '13'], (v) => bt(v) === 'Code'],
    [['int', '16'], (v) => isInt32(v) || bt(v) === 'Int32'],
    [['timestamp', '17'], (v) => bt(v) === 'Timestamp'],
    [['long', '18'], (v) => v instanceof Long || (typeof v === 'number' && Number.isInteger(v) && !isInt32(v))],
    [['decimal', '19'], (v) => bt(v) === 'Decimal128'],
    [['minKey', '-1'], (v) => bt(v) === 'MinKey'],
    [['maxKey', '127'], (v) => bt(v) === 'MaxKey'],
    [['number'], (v) => typeRank(v) === 3],
  ];
  for (const [names, f] of defs) for (const n of names) TYPE_ALIASES[n] = f;
}

/** `$type` with BSON's names and numbers; an array field matches 'array' and its elements' types. */
function $type(selector: string, value: unknown, _options: unknown): (obj: Doc) => boolean {
  const wanted = (Array.isArray(value) ? value : [value]).map((t) => {
    const f = TYPE_ALIASES[String(t)];
    if (!f) fail('BadValue', `Unknown type name alias: ${String(t)}`);
    return f;
  });
  return (obj) => {
    for (const v of pathValues(obj, selector)) {
      if (wanted.some((f) => f(v))) return true;
      if (Array.isArray(v) && v.some((el) => wanted.some((f) => f(el)))) return true;
    }
    return false;
  };
}

export const CONTEXT = Context.init({
  accumulator: accumulatorOps,
  expression: expressionOps,
  pipeline: pipelineOps,
  projection: projectionOps,
  query: { ...queryOps, $type } as typeof queryOps,
  window: windowOps,
} as Parameters<typeof Context.init>[0]);

export function mingoOptions(resolver?: (name: string) => Doc[]): Partial<Options> {
  return { context: CONTEXT, idKey: '_id', useStrictMode: true, collectionResolver: resolver };
}

/** mingo's errors become the server's BadValue, so the driver throws a MongoServerError. */
export function asCommandError(e: unknown): never {
  if (e instanceof CommandError) throw e;
  fail('BadValue', (e as Error).message ?? String(e));
}

export function compileFilter(filter: Doc): Matcher {
  if (Object.keys(filter).length === 0) return () => true;
  return compileSimpleFilter(filter, () => mingoMatcher(filter)) ?? mingoMatcher(filter);
}

function mingoMatcher(filter: Doc): Matcher {
  try {
    const q = new Query(filter, mingoOptions());
    return (doc) => q.test(doc);
  } catch (e) {
    asCommandError(e);
  }
}

interface Bound {
  value: unknown;
  inclusive: boolean;
}

export interface Plan {
  kind: 'ids' | 'range' | 'scan';
  ids: unknown[];
  low?: Bound;
  high?: Bound;
  /** The index's answer is the whole answer; documents need no deserializing to be tested. */
  exact: boolean;
  /** For an exact range: type bracketing, as `$gt: ObjectId` never returns a string. */
  rank?: number;
  matcher: Matcher;
}

const isOperatorDoc = (v: unknown): v is Doc => isPlainDoc(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => k.startsWith('$'));

export function planFilter(filter: Doc): Plan {
  const keys = Object.keys(filter);
  const matcher = compileFilter(filter);
  const scan: Plan = { kind: 'scan', ids: [], exact: keys.length === 0, matcher };
  if (!keys.includes('_id')) return scan;
  const spec = filter._id;
  const alone = keys.length === 1;
  if (!isOperatorDoc(spec)) {
    if (spec instanceof RegExp || (spec as { _bsontype?: string } | null)?._bsontype === 'BSONRegExp' || Array.isArray(spec)) return scan;
    return { kind: 'ids', ids: [spec], exact: alone, matcher };
  }
  const ops = Object.keys(spec);
  const rangeOps = ['$gt', '$gte', '$lt', '$lte'];
  if ('$eq' in spec && !Array.isArray(spec.$eq) && !(spec.$eq instanceof RegExp)) {
    return { kind: 'ids', ids: [spec.$eq], exact: alone && ops.length === 1, matcher };
  }
  if (Array.isArray(spec.$in) && !spec.$in.some((v) => v instanceof RegExp || Array.isArray(v))) {
    return { kind: 'ids', ids: spec.$in, exact: alone && ops.length === 1, matcher };
  }
  const present = ops.filter((o) => rangeOps.includes(o));
  if (present.length === 0) return scan;
  const plan: Plan = { kind: 'range', ids: [], exact: false, matcher };
  const ranks = new Set<number>();
  for (const o of present) {
    const value = spec[o];
    ranks.add(typeRank(value));
    const b: Bound = { value, inclusive: o.endsWith('e') };
    if (o.startsWith('$g')) {
      if (!plan.low || compareBson(value, plan.low.value) > 0) plan.low = b;
    } else if (!plan.high || compareBson(value, plan.high.value) < 0) plan.high = b;
  }
  const rank = [...ranks][0] as number;
  // Arrays, documents, MinKey/MaxKey and null have comparison rules of their own: leave those to mingo.
  if (alone && ops.length === present.length && ranks.size === 1 && [3, 4, 7, 8, 9, 10, 11].includes(rank)) {
    plan.exact = true;
    plan.rank = rank;
  }
  return plan;
}

const CHUNK = 256;

/**
 * Records in `_id` order between bounds. The tree is read in chunks and
 * re-entered by key, so writes between two getMores never invalidate it.
 */
function* treeRange(coll: Collection, low: Bound | undefined, high: Bound | undefined, dir: 1 | -1): Generator<DocRecord> {
  const tree = coll.byId;
  let from: Bound | undefined = dir === 1 ? low : high;
  const to = dir === 1 ? high : low;
  for (;;) {
    const chunk: DocRecord[] = [];
    let done = false;
    const it = dir === 1 ? tree.entries(from?.value) : tree.entriesReversed(from?.value);
    for (const [key, rec] of it) {
      if (from && !from.inclusive && compareBson(key, from.value) === 0) continue;
      if (to) {
        const c = compareBson(key, to.value) * dir;
        if (c > 0 || (c === 0 && !to.inclusive)) {
          done = true;
          break;
        }
      }
      chunk.push(rec);
      if (chunk.length >= CHUNK) break;
    }
    yield* chunk;
    if (done || chunk.length < CHUNK) return;
    from = { value: (chunk[chunk.length - 1] as DocRecord).id, inclusive: false };
  }
}

export function* scanRecords(coll: Collection, plan: Plan, dir: 1 | -1 | 0): Generator<DocRecord> {
  if (plan.kind === 'ids') {
    const ids = [...plan.ids].sort(compareBson);
    if (dir === -1) ids.reverse();
    let prev: unknown = Symbol('none');
    for (const id of ids) {
      if (typeof prev !== 'symbol' && compareBson(prev, id) === 0) continue;
      prev = id;
      const rec = coll.byId.get(id);
      if (rec) yield rec;
    }
    return;
  }
  if (plan.kind === 'range') {
    yield* treeRange(coll, plan.low, plan.high, dir === -1 ? -1 : 1);
    return;
  }
  if (dir === 0) {
    for (const rec of coll.byRid.values()) yield rec;
    return;
  }
  yield* treeRange(coll, undefined, undefined, dir);
}

export function docOf(rec: DocRecord): Doc {
  return deserialize(rec.raw) as Doc;
}

/** The value a sort sees: arrays sort by their smallest element ascending, largest descending. */
function sortValue(doc: Doc, path: string, dir: number): unknown {
  const found = pathValues(doc, path);
  const vals: unknown[] = [];
  for (const v of found) {
    if (Array.isArray(v)) vals.push(...v);
    else vals.push(v);
  }
  if (vals.length === 0) return null;
  let best = vals[0];
  for (const v of vals) if (compareBson(v, best) * dir < 0) best = v;
  return best;
}

export type SortSpec = [string, number][];

export function parseSort(sort: unknown): SortSpec {
  if (!isPlainDoc(sort)) return [];
  return Object.entries(sort).map(([k, v]) => {
    if (v === 1 || v === -1) return [k, v];
    if (isPlainDoc(v) && '$meta' in v) return [k, 0];
    return fail('BadValue', `$sort key ordering must be 1 (for ascending) or -1 (for descending)`);
  });
}

export function sortDocs(docs: Doc[], sort: SortSpec): Doc[] {
  const keys = sort.filter(([, d]) => d !== 0);
  if (keys.length === 0) return docs;
  const decorated = docs.map((d) => ({ d, k: keys.map(([p, dir]) => sortValue(d, p, dir)) }));
  decorated.sort((a, b) => {
    for (let i = 0; i < keys.length; i++) {
      const c = compareBson(a.k[i], b.k[i]) * (keys[i] as [string, number])[1];
      if (c !== 0) return c;
    }
    return 0;
  });
  return decorated.map((x) => x.d);
}

export function compileProjection(filter: Doc, projection: unknown): ((doc: Doc) => Doc) | null {
  if (!isPlainDoc(projection) || Object.keys(projection).length === 0) return null;
  try {
    const q = new Query(filter, mingoOptions());
    q.find([{}], projection).all(); // surfaces an invalid projection now, as the server does
    return (doc) => q.find([doc], projection).next() as Doc;
  } catch (e) {
    asCommandError(e);
  }
}

export interface FindSpec {
  filter: Doc;
  sort?: unknown;
  projection?: unknown;
  skip?: number;
  limit?: number;
}

/** A find's results, lazily: stored bytes when no projection applies, else documents. */
export function* findInCollection(coll: Collection, spec: FindSpec): Generator<RawDoc | Doc> {
  const plan = planFilter(spec.filter ?? {});
  const sort = parseSort(spec.sort);
  const project = compileProjection(spec.filter ?? {}, spec.projection);
  let skip = Math.max(0, spec.skip ?? 0);
  let left = spec.limit && spec.limit > 0 ? spec.limit : Infinity;
  const active = sort.filter(([, d]) => d !== 0);
  const byIdOnly = active.length === 0 || (active.length === 1 && (active[0] as [string, number])[0] === '_id');
  if (byIdOnly) {
    const dir = active.length ? ((active[0] as [string, number])[1] as 1 | -1) : plan.kind === 'scan' ? 0 : 1;
    for (const rec of scanRecords(coll, plan, dir)) {
      if (left <= 0) return;
      if (!rec.alive) continue;
      let doc: Doc | undefined;
      if (plan.exact) {
        if (plan.rank !== undefined && typeRank(rec.id) !== plan.rank) continue;
      } else {
        doc = docOf(rec);
        if (!plan.matcher(doc)) continue;
      }
      if (skip > 0) {
        skip--;
        continue;
      }
      left--;
      yield project ? project(doc ?? docOf(rec)) : new RawDoc(rec.raw);
    }
    return;
  }
  const matched: Doc[] = [];
  for (const rec of scanRecords(coll, plan, 0)) {
    const doc = docOf(rec);
    if (plan.matcher(doc)) matched.push(doc);
  }
  const sorted = sortDocs(matched, sort);
  for (const doc of sorted.slice(skip, left === Infinity ? undefined : skip + left)) yield project ? project(doc) : doc;
}

/** Records matching a filter, in the order a write takes them. */
export function* matchingRecords(coll: Collection, filter: Doc): Generator<[DocRecord, Doc]> {
  const plan = planFilter(filter ?? {});
  for (const rec of scanRecords(coll, plan, plan.kind === 'scan' ? 0 : 1)) {
    if (!rec.alive) continue;
    const doc = docOf(rec);
    if (plan.exact && plan.rank !== undefined && typeRank(rec.id) !== plan.rank) continue;
    if (!plan.exact && !plan.matcher(doc)) continue;
    yield [rec, doc];
  }
}

/** Runs pipeline stages over documents with mingo. */
export function runPipeline(docs: Doc[], pipeline: Doc[], resolver?: (name: string) => Doc[]): Doc[] {
  if (pipeline.length === 0) return docs;
  try {
    return new Aggregator(pipeline, mingoOptions(resolver)).run(docs) as Doc[];
  } catch (e) {
    asCommandError(e);
  }
}
