/** find, getMore, killCursors, count, distinct, aggregate (views and $lookup included), and the stats commands. */
import os from 'node:os';
import { Long } from 'bson';
import { canonicalKey, isPlainDoc } from '../bson-order.js';
import type { RawDoc } from '../bson-raw.js';
import { cursorIdOf, Lookahead, longId, takeBatch, type QueryCursor } from '../cursors.js';
import { fail } from '../errors.js';
import { pathValues } from '../paths.js';
import { compileFilter, compileProjection, docOf, findInCollection, matchingRecords, parseSort, runPipeline, sortDocs } from '../query.js';
import type { CommandContext, EmulatorState, Handler } from '../state.js';
import type { Collection, Doc } from '../storage.js';
import { changeStreamGetMore, openChangeStream } from './change-stream.js';
import { runOutStage } from './out.js';

/** Documents of a collection or view, for $lookup's `from` and for reading views. */
export function sourceDocs(state: EmulatorState, db: string, name: string, depth = 0): Doc[] {
  if (depth > 20) fail('BadValue', 'View depth too deep or view cycle detected. Maximum depth is 20');
  const coll = state.storage.collection(db, name);
  if (coll) return [...coll.byRid.values()].map(docOf);
  const view = state.storage.view(db, name);
  if (!view) return [];
  return runPipeline(sourceDocs(state, db, view.viewOn, depth + 1), view.pipeline, resolverFor(state, db));
}

export function resolverFor(state: EmulatorState, db: string): (name: string) => Doc[] {
  return (name) => sourceDocs(state, db, name);
}

/** A cursor reply, registering the cursor when the first batch does not end the results. */
export function cursorReply(state: EmulatorState, ns: string, source: Iterator<RawDoc | Doc>, batchSize: number, singleBatch = false): Doc {
  const look = new Lookahead(source);
  const { batch, done } = takeBatch(look, batchSize);
  let id = 0n;
  if (!done && !singleBatch) {
    const c: QueryCursor = { kind: 'query', id: state.cursors.newId(), ns, source: look, lastUsed: Date.now(), busy: false };
    state.cursors.add(c);
    id = c.id;
  }
  return { cursor: { firstBatch: batch, id: longId(id), ns }, ok: 1 };
}

function firstBatchSize(cmd: Doc): number {
  const fromCursor = isPlainDoc(cmd.cursor) ? cmd.cursor.batchSize : undefined;
  const n = Number(fromCursor ?? cmd.batchSize ?? 101);
  if (n < 0) fail('BadValue', 'batchSize must be non-negative');
  return n;
}

function* inMemoryFind(docs: Doc[], cmd: Doc): Generator<Doc> {
  const filter = (cmd.filter ?? {}) as Doc;
  const match = compileFilter(filter);
  const project = compileProjection(filter, cmd.projection);
  const sorted = sortDocs(docs.filter(match), parseSort(cmd.sort));
  const skip = Number(cmd.skip ?? 0);
  const limit = Math.abs(Number(cmd.limit ?? 0));
  for (const d of sorted.slice(skip, limit ? skip + limit : undefined)) yield project ? project(d) : d;
}

const find: Handler = (cmd, ctx) => {
  const name = String(cmd.find);
  const ns = `${ctx.db}.${name}`;
  let limit = Number(cmd.limit ?? 0);
  let singleBatch = cmd.singleBatch === true;
  if (limit < 0) {
    limit = -limit;
    singleBatch = true;
  }
  let batchSize = firstBatchSize(cmd);
  if (limit > 0 && batchSize > limit) batchSize = limit;
  const coll = ctx.state.storage.collection(ctx.db, name);
  if (!coll) {
    const docs = ctx.state.storage.view(ctx.db, name) ? sourceDocs(ctx.state, ctx.db, name) : [];
    return cursorReply(ctx.state, ns, inMemoryFind(docs, { ...cmd, limit }), batchSize, singleBatch);
  }
  const source = findInCollection(coll, {
    filter: (cmd.filter ?? {}) as Doc,
    sort: cmd.sort,
    projection: cmd.projection,
    skip: Number(cmd.skip ?? 0),
    limit,
  });
  return cursorReply(ctx.state, ns, source, batchSize, singleBatch);
};

const getMore: Handler = async (cmd, ctx) => {
  const id = cursorIdOf(cmd.getMore);
  const cursor = ctx.state.cursors.get(id);
  if (!cursor) fail('CursorNotFound', `cursor id ${id} not found`);
  if (cursor.busy) fail('IllegalOperation', `cursor id ${id} is already in use`);
  if (cursor.kind === 'change') return changeStreamGetMore(cursor, cmd, ctx);
  const n = Number(cmd.batchSize ?? 0);
  const { batch, done } = takeBatch(cursor.source, n > 0 ? n : Infinity);
  if (done) ctx.state.cursors.kill(id);
  return { cursor: { nextBatch: batch, id: longId(done ? 0n : id), ns: cursor.ns }, ok: 1 };
};

const killCursors: Handler = (cmd, ctx) => {
  const killed: Long[] = [];
  const notFound: Long[] = [];
  for (const raw of (cmd.cursors ?? []) as unknown[]) {
    const id = cursorIdOf(raw);
    (ctx.state.cursors.kill(id) ? killed : notFound).push(longId(id));
  }
  return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
};

function docsMatching(ctx: CommandContext, name: string, filter: Doc): Doc[] {
  const coll = ctx.state.storage.collection(ctx.db, name);
  if (coll) return [...matchingRecords(coll, filter)].map(([, d]) => d);
  const match = compileFilter(filter);
  return sourceDocs(ctx.state, ctx.db, name).filter(match);
}

const count: Handler = (cmd, ctx) => {
  const name = String(cmd.count);
  const q = (cmd.query ?? {}) as Doc;
  const skip = Number(cmd.skip ?? 0);
  const limit = Math.abs(Number(cmd.limit ?? 0));
  const coll = ctx.state.storage.collection(ctx.db, name);
  let n = coll && Object.keys(q).length === 0 ? coll.size : docsMatching(ctx, name, q).length;
  n = Math.max(0, n - skip);
  if (limit) n = Math.min(n, limit);
  return { n, ok: 1 };
};

const distinct: Handler = (cmd, ctx) => {
  const key = String(cmd.key);
  const seen = new Set<string>();
  const values: unknown[] = [];
  for (const d of docsMatching(ctx, String(cmd.distinct), (cmd.query ?? {}) as Doc)) {
    for (const v of pathValues(d, key)) {
      for (const x of Array.isArray(v) ? v : [v]) {
        const k = canonicalKey(x);
        if (!seen.has(k)) {
          seen.add(k);
          values.push(x);
        }
      }
    }
  }
  return { values, ok: 1 };
};

function collStatsOf(coll: Collection | undefined): Doc {
  let size = 0;
  if (coll) for (const r of coll.byRid.values()) size += r.raw.length;
  const count = coll?.size ?? 0;
  const indexSizes: Doc = {};
  if (coll) {
    indexSizes._id_ = count * 16;
    for (const ix of coll.indexes) indexSizes[ix.spec.name] = count * 16;
  }
  const nindexes = coll ? coll.indexes.length + 1 : 0;
  return {
    size,
    count,
    avgObjSize: count ? Math.round(size / count) : 0,
    storageSize: size,
    freeStorageSize: 0,
    capped: false,
    nindexes,
    totalIndexSize: nindexes * count * 16,
    totalSize: size + nindexes * count * 16,
    indexSizes,
  };
}

const aggregate: Handler = (cmd, ctx) => {
  const pipeline = cmd.pipeline;
  if (!Array.isArray(pipeline)) fail('TypeMismatch', "'pipeline' option must be specified as an array");
  const first = (pipeline[0] ?? {}) as Doc;
  if ('$changeStream' in first) return openChangeStream(cmd, ctx);
  const batchSize = firstBatchSize(cmd);
  const state = ctx.state;
  if (cmd.aggregate === 1) {
    const ns = `${ctx.db}.$cmd.aggregate`;
    if ('$documents' in first) {
      const docs = (first.$documents ?? []) as Doc[];
      return cursorReply(state, ns, runPipeline(docs, pipeline.slice(1) as Doc[], resolverFor(state, ctx.db))[Symbol.iterator](), batchSize);
    }
    if ('$currentOp' in first || '$listLocalSessions' in first) return cursorReply(state, ns, [][Symbol.iterator](), batchSize);
    fail('InvalidNamespace', `{aggregate: 1} is not valid for '${Object.keys(first)[0] ?? ''}'; a collection is required.`);
  }
  const name = String(cmd.aggregate);
  const ns = `${ctx.db}.${name}`;
  const coll = state.storage.collection(ctx.db, name);
  if ('$collStats' in first) {
    const spec = (first.$collStats ?? {}) as Doc;
    const out: Doc = { ns, host: `${os.hostname()}:${state.port}`, localTime: new Date() };
    const stats = collStatsOf(coll);
    if (spec.storageStats !== undefined) out.storageStats = stats;
    if (spec.count !== undefined) out.count = stats.count;
    const rest = runPipeline([out], pipeline.slice(1) as Doc[]);
    return cursorReply(state, ns, rest[Symbol.iterator](), batchSize);
  }
  const stages = [...(pipeline as Doc[])];
  const last = stages[stages.length - 1];
  const writing = last && ('$out' in last || '$merge' in last) ? (stages.pop() as Doc) : null;
  let docs: Doc[];
  if (coll && stages[0] && '$match' in stages[0] && isPlainDoc(stages[0].$match)) {
    docs = [...matchingRecords(coll, stages.shift()?.$match as Doc)].map(([, d]) => d);
  } else {
    docs = sourceDocs(state, ctx.db, name);
  }
  const result = runPipeline(docs, stages, resolverFor(state, ctx.db));
  if (writing) {
    runOutStage(ctx, writing, result);
    return { cursor: { firstBatch: [], id: Long.ZERO, ns }, ok: 1 };
  }
  return cursorReply(state, ns, result[Symbol.iterator](), batchSize);
};

const listDatabases: Handler = (cmd, ctx) => {
  const names = new Set(['admin', 'config', 'local', ...ctx.state.storage.dbs.keys()]);
  const filter = compileFilter((cmd.filter ?? {}) as Doc);
  const databases: Doc[] = [];
  let totalSize = 0;
  for (const name of [...names].sort()) {
    const d = ctx.state.storage.db(name);
    let sizeOnDisk = 0;
    for (const c of d?.collections.values() ?? []) sizeOnDisk += (collStatsOf(c).size as number) + 4096;
    if (!d) sizeOnDisk = 8192;
    const entry: Doc = cmd.nameOnly === true ? { name } : { name, sizeOnDisk, empty: !d || d.collections.size === 0 };
    if (!filter(entry)) continue;
    totalSize += sizeOnDisk;
    databases.push(entry);
  }
  return cmd.nameOnly === true ? { databases, ok: 1 } : { databases, totalSize, totalSizeMb: Math.round(totalSize / 2 ** 20), ok: 1 };
};

const dbStats: Handler = (_cmd, ctx) => {
  const d = ctx.state.storage.db(ctx.db);
  let objects = 0;
  let dataSize = 0;
  let indexes = 0;
  for (const c of d?.collections.values() ?? []) {
    const s = collStatsOf(c);
    objects += s.count as number;
    dataSize += s.size as number;
    indexes += s.nindexes as number;
  }
  return {
    db: ctx.db,
    collections: d?.collections.size ?? 0,
    views: d?.views.size ?? 0,
    objects,
    avgObjSize: objects ? dataSize / objects : 0,
    dataSize,
    storageSize: dataSize,
    indexes,
    indexSize: objects * 16 * indexes,
    totalSize: dataSize + objects * 16 * indexes,
    scaleFactor: 1,
    fsUsedSize: 0,
    fsTotalSize: 0,
    ok: 1,
  };
};

const collStats: Handler = (cmd, ctx) => {
  const coll = ctx.state.storage.collection(ctx.db, String(cmd.collStats));
  if (!coll) fail('NamespaceNotFound', `Collection [${ctx.db}.${String(cmd.collStats)}] not found.`);
  return { ns: coll.ns, ...collStatsOf(coll), ok: 1 };
};

export const readCommands: Record<string, Handler> = {
  find,
  getMore,
  killCursors,
  count,
  distinct,
  aggregate,
  listDatabases,
  dbStats,
  collStats,
};
