/** insert, update, delete and findAndModify, with the server's reply shapes and write errors. */
import { deserialize, serialize } from 'bson';
import { isPlainDoc } from '../bson-order.js';
import { CommandError, fail } from '../errors.js';
import { compileProjection, docOf, matchingRecords, parseSort, sortDocs } from '../query.js';
import type { CommandContext, Handler } from '../state.js';
import type { Collection, Doc, DocRecord } from '../storage.js';
import { applyUpdate, updateKind, upsertSeed, withIdFirst } from '../update.js';
import { collectionForWrite, deleteRecord, insertDocument, insertRawDocument, writeRecord } from '../writes.js';

function writeError(index: number, e: unknown): Doc {
  if (e instanceof CommandError) return { index, code: e.code, errmsg: e.message, ...e.extra };
  return { index, code: 1, errmsg: (e as Error).message ?? String(e) };
}

/** Items of a write command: from its kind-1 section when sent so, else from the body. */
function items(cmd: Doc, ctx: CommandContext, field: string): { docs: Doc[]; raws: (Buffer | undefined)[] } {
  const seq = ctx.sequences.get(field);
  if (seq) return { docs: seq.map((b) => deserialize(b) as Doc), raws: seq };
  const docs = cmd[field];
  if (!Array.isArray(docs)) fail('FailedToParse', `BSON field '${Object.keys(cmd)[0]}.${field}' is missing but a required field`);
  return { docs: docs as Doc[], raws: [] };
}

function writeReply(n: number, errors: Doc[], extra: Doc = {}): Doc {
  const reply: Doc = { n, ...extra };
  if (errors.length) reply.writeErrors = errors;
  reply.ok = 1;
  return reply;
}

const insert: Handler = (cmd, ctx) => {
  const ordered = cmd.ordered !== false;
  const coll = collectionForWrite(ctx.state, ctx.db, String(cmd.insert));
  const raws = ctx.sequences.get('documents') ?? (Array.isArray(cmd.documents) ? (cmd.documents as Doc[]).map((d) => serialize(d)) : items(cmd, ctx, 'documents').raws);
  let n = 0;
  const errors: Doc[] = [];
  for (let i = 0; i < raws.length; i++) {
    try {
      insertRawDocument(ctx.state, coll, raws[i] as Uint8Array);
      n++;
    } catch (e) {
      errors.push(writeError(i, e));
      if (ordered) break;
    }
  }
  return writeReply(n, errors);
};

interface UpdateOutcome {
  matched: number;
  modified: number;
  upsertedId?: unknown;
  before?: Doc | null;
  after?: Doc | null;
}

/** One update statement; also the body of findAndModify's update. */
function updateOne(ctx: CommandContext, coll: Collection, q: Doc, u: unknown, opts: { multi: boolean; upsert: boolean; arrayFilters?: Doc[]; sort?: unknown }): UpdateOutcome {
  const state = ctx.state;
  const kind = updateKind(u);
  if (opts.multi && kind === 'replacement') fail('FailedToParse', 'multi update is not supported for replacement-style update');
  let targets: [DocRecord, Doc][];
  if (opts.sort !== undefined && parseSort(opts.sort).length) {
    const all = [...matchingRecords(coll, q)];
    const order = sortDocs(
      all.map(([, d]) => d),
      parseSort(opts.sort),
    );
    const byDoc = new Map(all.map(([r, d]) => [d, r]));
    targets = order.slice(0, opts.multi ? undefined : 1).map((d) => [byDoc.get(d) as DocRecord, d]);
  } else {
    targets = [];
    for (const t of matchingRecords(coll, q)) {
      targets.push(t);
      if (!opts.multi) break;
    }
  }
  const out: UpdateOutcome = { matched: 0, modified: 0 };
  for (const [rec, doc] of targets) {
    if (!rec.alive) continue;
    out.matched++;
    const before = docOf(rec); // `doc` is updated in place
    const { doc: after, changed } = applyUpdate(doc, u, { arrayFilters: opts.arrayFilters, query: q, now: state.log.now() });
    out.before = before;
    out.after = after;
    if (!changed) continue;
    writeRecord(state, coll, rec, before, after, kind === 'replacement');
    out.modified++;
  }
  if (out.matched === 0 && opts.upsert) {
    const seed = kind === 'replacement' ? {} : upsertSeed(q);
    if (kind === 'replacement' && seed._id === undefined) {
      const fromQuery = upsertSeed(q)._id;
      if (fromQuery !== undefined) seed._id = fromQuery;
    }
    const { doc } = applyUpdate(seed, u, { arrayFilters: opts.arrayFilters, inserting: true, now: state.log.now() });
    const stored = withIdFirst(doc);
    insertDocument(state, coll, stored);
    out.upsertedId = stored._id;
    out.before = null;
    out.after = stored;
  }
  return out;
}

const update: Handler = (cmd, ctx) => {
  const { docs } = items(cmd, ctx, 'updates');
  const ordered = cmd.ordered !== false;
  const coll = collectionForWrite(ctx.state, ctx.db, String(cmd.update));
  let n = 0;
  let nModified = 0;
  const upserted: Doc[] = [];
  const errors: Doc[] = [];
  for (let i = 0; i < docs.length; i++) {
    const st = docs[i] as Doc;
    try {
      if (!isPlainDoc(st.q)) fail('FailedToParse', "BSON field 'update.updates.q' is missing but a required field");
      const r = updateOne(ctx, coll, st.q, st.u, {
        multi: st.multi === true,
        upsert: st.upsert === true,
        arrayFilters: st.arrayFilters as Doc[] | undefined,
        sort: st.sort,
      });
      n += r.matched;
      nModified += r.modified;
      if (r.upsertedId !== undefined) {
        n += 1;
        upserted.push({ index: i, _id: r.upsertedId });
      }
    } catch (e) {
      errors.push(writeError(i, e));
      if (ordered) break;
    }
  }
  return writeReply(n, errors, { nModified, ...(upserted.length ? { upserted } : {}) });
};

const del: Handler = (cmd, ctx) => {
  const { docs } = items(cmd, ctx, 'deletes');
  const ordered = cmd.ordered !== false;
  const coll = ctx.state.storage.collection(ctx.db, String(cmd.delete));
  if (!coll && ctx.state.storage.view(ctx.db, String(cmd.delete))) fail('CommandNotSupportedOnView', `Namespace ${ctx.db}.${String(cmd.delete)} is a view, not a collection`);
  let n = 0;
  const errors: Doc[] = [];
  for (let i = 0; i < docs.length; i++) {
    const st = docs[i] as Doc;
    try {
      if (!coll) continue;
      const limit = Number(st.limit ?? 0);
      const q = (st.q ?? {}) as Doc;
      const victims: [DocRecord, Doc][] = [];
      for (const t of matchingRecords(coll, q)) {
        victims.push(t);
        if (limit === 1) break;
      }
      for (const [rec, doc] of victims) {
        if (!rec.alive) continue;
        deleteRecord(ctx.state, coll, rec, doc);
        n++;
      }
    } catch (e) {
      errors.push(writeError(i, e));
      if (ordered) break;
    }
  }
  return writeReply(n, errors);
};

const findAndModify: Handler = (cmd, ctx) => {
  const name = String(cmd.findAndModify ?? cmd.findandmodify);
  const q = (cmd.query ?? {}) as Doc;
  const project = compileProjection(q, cmd.fields);
  const shape = (d: Doc | null | undefined) => (d ? (project ? project(d) : d) : null);
  if (cmd.remove === true) {
    if (cmd.update !== undefined) fail('FailedToParse', 'Cannot specify both an update and remove=true');
    const coll = ctx.state.storage.collection(ctx.db, name);
    if (!coll) return { lastErrorObject: { n: 0 }, value: null, ok: 1 };
    let found: [DocRecord, Doc] | undefined;
    if (cmd.sort !== undefined && parseSort(cmd.sort).length) {
      const all = [...matchingRecords(coll, q)];
      const first = sortDocs(
        all.map(([, d]) => d),
        parseSort(cmd.sort),
      )[0];
      found = all.find(([, d]) => d === first);
    } else {
      found = matchingRecords(coll, q).next().value ?? undefined;
    }
    if (!found) return { lastErrorObject: { n: 0 }, value: null, ok: 1 };
    deleteRecord(ctx.state, coll, found[0], found[1]);
    return { lastErrorObject: { n: 1 }, value: shape(found[1]), ok: 1 };
  }
  if (cmd.update === undefined) fail('FailedToParse', 'Either an update or remove=true must be specified');
  const coll = collectionForWrite(ctx.state, ctx.db, name);
  const r = updateOne(ctx, coll, q, cmd.update, {
    multi: false,
    upsert: cmd.upsert === true,
    arrayFilters: cmd.arrayFilters as Doc[] | undefined,
    sort: cmd.sort,
  });
  const lastErrorObject: Doc = { n: r.matched + (r.upsertedId !== undefined ? 1 : 0), updatedExisting: r.matched > 0 };
  if (r.upsertedId !== undefined) lastErrorObject.upserted = r.upsertedId;
  const value = cmd.new === true ? shape(r.after) : r.upsertedId !== undefined ? null : shape(r.before);
  return { lastErrorObject, value, ok: 1 };
};

export const crudCommands: Record<string, Handler> = {
  insert,
  update,
  delete: del,
  findAndModify,
  findandmodify: findAndModify,
};

