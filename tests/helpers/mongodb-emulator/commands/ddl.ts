/** Collections, views and indexes: create, drop, rename, list, collMod. */
import { UUID } from 'bson';
import { compareBson, isPlainDoc } from '../bson-order.js';
import { fail } from '../errors.js';
import { compileFilter, docOf } from '../query.js';
import { SecondaryIndex, type Collection, type Doc, type IndexSpec } from '../storage.js';
import type { CommandContext, Handler } from '../state.js';
import { checkCollectionName, createCollection, dropCollection, dropDatabase, renameCollection } from '../writes.js';
import { cursorReply } from './read.js';

/** Fields any command may carry, which are not the command's own options. */
const GENERIC_FIELDS = new Set(['$db', 'lsid', '$clusterTime', 'writeConcern', 'readConcern', '$readPreference', 'txnNumber', 'apiVersion', 'apiStrict', 'apiDeprecationErrors', 'comment', 'maxTimeMS']);

const create: Handler = (cmd, ctx) => {
  const name = checkCollectionName(cmd.create);
  const options: Doc = {};
  for (const [k, v] of Object.entries(cmd)) if (k !== 'create' && !GENERIC_FIELDS.has(k)) options[k] = v;
  if (typeof options.viewOn === 'string') {
    const d = ctx.state.storage.ensureDb(ctx.db);
    if (d.collections.has(name) || d.views.has(name)) fail('NamespaceExists', `Collection ${ctx.db}.${name} already exists.`);
    const pipeline = (options.pipeline ?? []) as Doc[];
    if (!Array.isArray(pipeline)) fail('TypeMismatch', "'pipeline' must be an array");
    d.views.set(name, { name, viewOn: options.viewOn, pipeline, uuid: new UUID() });
    return { ok: 1 };
  }
  const existing = ctx.state.storage.collection(ctx.db, name);
  // Creating what is already there with the same options succeeds, as on the server.
  if (existing && compareBson(existing.options, options) === 0) return { ok: 1 };
  createCollection(ctx.state, ctx.db, name, options);
  return { ok: 1 };
};

const drop: Handler = (cmd, ctx) => {
  const name = String(cmd.drop);
  const coll = ctx.state.storage.collection(ctx.db, name);
  const nIndexesWas = coll ? coll.indexes.length + 1 : undefined;
  dropCollection(ctx.state, ctx.db, name);
  return { ...(nIndexesWas !== undefined ? { nIndexesWas } : {}), ns: `${ctx.db}.${name}`, ok: 1 };
};

const dropDb: Handler = (_cmd, ctx) => {
  dropDatabase(ctx.state, ctx.db);
  return { dropped: ctx.db, ok: 1 };
};

function splitNs(ns: unknown): [string, string] {
  const s = String(ns);
  const dot = s.indexOf('.');
  if (dot <= 0) fail('InvalidNamespace', `Invalid namespace specified '${s}'`);
  return [s.slice(0, dot), s.slice(dot + 1)];
}

const rename: Handler = (cmd, ctx) => {
  if (ctx.db !== 'admin') fail('IllegalOperation', 'renameCollection may only be run against the admin database.');
  renameCollection(ctx.state, splitNs(cmd.renameCollection), splitNs(cmd.to), cmd.dropTarget === true);
  return { ok: 1 };
};

function collectionInfo(c: Collection): Doc {
  return {
    name: c.name,
    type: 'collection',
    options: c.options,
    info: { readOnly: false, uuid: c.uuid },
    idIndex: { v: 2, key: { _id: 1 }, name: '_id_' },
  };
}

const listCollections: Handler = (cmd, ctx) => {
  const d = ctx.state.storage.db(ctx.db);
  const filter = compileFilter((cmd.filter ?? {}) as Doc);
  const out: Doc[] = [];
  for (const c of d?.collections.values() ?? []) out.push(collectionInfo(c));
  for (const v of d?.views.values() ?? []) out.push({ name: v.name, type: 'view', options: { viewOn: v.viewOn, pipeline: v.pipeline }, info: { readOnly: true } });
  const shown = out.filter(filter).map((e) => (cmd.nameOnly === true ? { name: e.name, type: e.type } : e));
  const batchSize = Number((cmd.cursor as Doc | undefined)?.batchSize ?? 1e9) || 1e9;
  return cursorReply(ctx.state, `${ctx.db}.$cmd.listCollections`, shown[Symbol.iterator](), batchSize);
};

/** The server's default index name: fields and directions joined, as `a_1_b_-1`. */
export function defaultIndexName(key: Doc): string {
  return Object.entries(key)
    .map(([k, v]) => `${k}_${String(v)}`)
    .join('_');
}

const createIndexes: Handler = (cmd, ctx) => {
  const state = ctx.state;
  const name = checkCollectionName(cmd.createIndexes);
  if (state.storage.view(ctx.db, name)) fail('CommandNotSupportedOnView', `Namespace ${ctx.db}.${name} is a view, not a collection`);
  let coll = state.storage.collection(ctx.db, name);
  const created = !coll;
  if (!coll) coll = createCollection(state, ctx.db, name);
  const specs = cmd.indexes;
  if (!Array.isArray(specs) || specs.length === 0) fail('BadValue', 'Must specify at least one index to create');
  const before = coll.indexes.length + 1;
  let note: string | undefined;
  for (const raw of specs as Doc[]) {
    if (!isPlainDoc(raw.key) || Object.keys(raw.key).length === 0) fail('FailedToParse', "The 'key' field is a required property of an index specification");
    const key = raw.key;
    const ixName = typeof raw.name === 'string' ? raw.name : defaultIndexName(key);
    const spec: IndexSpec = { ...raw, v: 2, key, name: ixName };
    if (Object.keys(key).length === 1 && key._id !== undefined && ixName === '_id_') continue;
    const same = coll.indexes.find((ix) => ix.spec.name === ixName);
    const sameKey = coll.indexes.find((ix) => compareBson(ix.spec.key, key) === 0);
    if (same) {
      if (compareBson(same.spec.key, key) !== 0) fail('IndexKeySpecsConflict', `An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: ${JSON.stringify(spec)}, existing index: ${JSON.stringify(same.spec)}`);
      if ((same.spec.unique === true) !== (spec.unique === true)) fail('IndexOptionsConflict', `An existing index has the same name as the requested index but different options. Requested index: ${JSON.stringify(spec)}`);
      note = 'all indexes already exist';
      continue;
    }
    if (sameKey && (sameKey.spec.unique === true) === (spec.unique === true)) {
      fail('IndexOptionsConflict', `Index already exists with a different name: ${sameKey.spec.name}`);
    }
    const partial = isPlainDoc(raw.partialFilterExpression) ? compileFilter(raw.partialFilterExpression) : null;
    const ix = new SecondaryIndex(spec, partial);
    const docs = function* (c: Collection) {
      for (const rec of c.byRid.values()) yield [rec, docOf(rec)] as [typeof rec, Doc];
    };
    coll.addIndex(ix, docs(coll));
    state.log.append({ op: 'createIndexes', db: ctx.db, coll: name, extra: { operationDescription: { indexes: [spec] } } });
  }
  return {
    numIndexesBefore: before,
    numIndexesAfter: coll.indexes.length + 1,
    ...(note ? { note } : {}),
    createdCollectionAutomatically: created,
    ok: 1,
  };
};

const listIndexes: Handler = (cmd, ctx) => {
  const name = String(cmd.listIndexes);
  const coll = ctx.state.storage.collection(ctx.db, name);
  if (!coll) fail('NamespaceNotFound', `ns does not exist: ${ctx.db}.${name}`);
  const all: Doc[] = [{ v: 2, key: { _id: 1 }, name: '_id_' }, ...coll.indexes.map((ix) => ix.spec)];
  return cursorReply(ctx.state, `${ctx.db}.$cmd.listIndexes.${name}`, all[Symbol.iterator](), 1e9);
};

const dropIndexes: Handler = (cmd, ctx) => {
  const name = String(cmd.dropIndexes ?? cmd.deleteIndexes);
  const coll = ctx.state.storage.collection(ctx.db, name);
  if (!coll) fail('NamespaceNotFound', `ns not found ${ctx.db}.${name}`);
  const before = coll.indexes.length + 1;
  const which = cmd.index;
  const drop = (pred: (ix: SecondaryIndex) => boolean, what: string) => {
    const found = coll.indexes.filter(pred);
    if (found.length === 0) fail('IndexNotFound', `index not found with name [${what}]`);
    coll.indexes = coll.indexes.filter((ix) => !pred(ix));
    for (const ix of found) ctx.state.log.append({ op: 'dropIndexes', db: ctx.db, coll: name, extra: { operationDescription: { indexes: [ix.spec] } } });
  };
  if (which === '*') {
    coll.indexes = [];
  } else if (typeof which === 'string') {
    if (which === '_id_') fail('InvalidOptions', 'cannot drop _id index');
    drop((ix) => ix.spec.name === which, which);
  } else if (Array.isArray(which)) {
    for (const n of which) drop((ix) => ix.spec.name === n, String(n));
  } else if (isPlainDoc(which)) {
    drop((ix) => compareBson(ix.spec.key, which) === 0, JSON.stringify(which));
  } else {
    fail('BadValue', "'index' must be a string, an array of names or a key pattern");
  }
  return { nIndexesWas: before, ok: 1 };
};

const collMod: Handler = (cmd, ctx: CommandContext) => {
  const name = String(cmd.collMod);
  const coll = ctx.state.storage.collection(ctx.db, name);
  const view = ctx.state.storage.view(ctx.db, name);
  if (view) {
    if (typeof cmd.viewOn === 'string') view.viewOn = cmd.viewOn;
    if (Array.isArray(cmd.pipeline)) view.pipeline = cmd.pipeline as Doc[];
    return { ok: 1 };
  }
  if (!coll) fail('NamespaceNotFound', `ns does not exist: ${ctx.db}.${name}`);
  for (const k of ['changeStreamPreAndPostImages', 'validator', 'validationLevel', 'validationAction', 'expireAfterSeconds']) {
    if (cmd[k] !== undefined) coll.options = { ...coll.options, [k]: cmd[k] };
  }
  return { ok: 1 };
};

export const ddlCommands: Record<string, Handler> = {
  create,
  drop,
  dropDatabase: dropDb,
  renameCollection: rename,
  listCollections,
  createIndexes,
  listIndexes,
  dropIndexes,
  deleteIndexes: dropIndexes,
  collMod,
};
