/**
 * Every change to data goes through here, so that each one is recorded in the
 * history exactly once, with its own tick of the clock.
 */
import { deserialize, ObjectId, serialize } from 'bson';
import { documentOf, findIdElement } from './bson-raw.js';
import { compareBson, isPlainDoc } from './bson-order.js';
import { fail } from './errors.js';
import type { EmulatorState } from './state.js';
import { Collection, type Doc, type DocRecord } from './storage.js';
import { describeUpdate, withIdFirst } from './update.js';

const NAME_RE = /^[^\0$]+$/;

export function checkCollectionName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || !NAME_RE.test(name.replace(/^system\./, 's'))) {
    fail('InvalidNamespace', `Invalid collection name: ${String(name)}`);
  }
  return name;
}

export function checkDbName(name: string): void {
  if (!name || /[/\\. "$\0]/.test(name)) fail('InvalidNamespace', `Invalid database name: '${name}'`);
}

export function createCollection(state: EmulatorState, db: string, name: string, options: Doc = {}): Collection {
  checkDbName(db);
  checkCollectionName(name);
  const d = state.storage.ensureDb(db);
  if (d.collections.has(name) || d.views.has(name)) fail('NamespaceExists', `Collection ${db}.${name} already exists.`);
  const coll = new Collection(db, name, options);
  d.collections.set(name, coll);
  state.log.append({ op: 'create', db, coll: name, extra: { operationDescription: { idIndex: { v: 2, key: { _id: 1 }, name: '_id_' } } } });
  return coll;
}

/** The collection a write goes to, created on first use as the server does. */
export function collectionForWrite(state: EmulatorState, db: string, name: string): Collection {
  const existing = state.storage.collection(db, name);
  if (existing) return existing;
  if (state.storage.view(db, name)) fail('CommandNotSupportedOnView', `Namespace ${db}.${name} is a view, not a collection`);
  return createCollection(state, db, name);
}

/** Inserts one document. */
export function insertDocument(state: EmulatorState, coll: Collection, doc: Doc): DocRecord {
  if (Array.isArray(doc._id)) fail('InvalidIdField', "The '_id' value cannot be of type array");
  if (doc._id instanceof RegExp) fail('InvalidIdField', "can't use a regex for _id");
  const stored = withIdFirst(doc);
  const bytes = serialize(stored);
  const rec = coll.insert(stored, bytes);
  state.log.append({ op: 'insert', db: coll.db, coll: coll.name, id: stored._id, doc: bytes });
  return rec;
}

/**
 * Inserts one document from the BSON the client sent. `_id` is moved (or
 * generated) to the front in the bytes themselves, and the document is only
 * deserialized when a secondary index needs its fields: a million-document
 * backfill costs little more than copying bytes.
 */
export function insertRawDocument(state: EmulatorState, coll: Collection, raw: Uint8Array): DocRecord {
  const el = findIdElement(raw);
  let bytes: Uint8Array;
  let idElement: Uint8Array;
  if (!el) {
    const one = serialize({ _id: new ObjectId() });
    idElement = one.subarray(4, one.length - 1);
    bytes = documentOf([idElement, raw.subarray(4, raw.length - 1)]);
  } else {
    if (el.type === 0x04) fail('InvalidIdField', "The '_id' value cannot be of type array");
    if (el.type === 0x0b) fail('InvalidIdField', "can't use a regex for _id");
    idElement = raw.subarray(el.start, el.end);
    bytes = el.start === 4 ? raw : documentOf([idElement, raw.subarray(4, el.start), raw.subarray(el.end, raw.length - 1)]);
  }
  const doc = coll.indexes.length ? (deserialize(bytes) as Doc) : (deserialize(documentOf([idElement])) as Doc);
  const rec = coll.insert(doc, bytes);
  state.log.append({ op: 'insert', db: coll.db, coll: coll.name, id: doc._id, doc: bytes });
  return rec;
}

/** Writes a record's new version; `replacement` decides the event's operationType. */
export function writeRecord(state: EmulatorState, coll: Collection, rec: DocRecord, before: Doc, after: Doc, replacement: boolean): void {
  const bytes = serialize(after);
  coll.replace(rec, before, after, bytes);
  const images = coll.recordsImages;
  if (replacement) {
    state.log.append({ op: 'replace', db: coll.db, coll: coll.name, id: rec.id, doc: bytes, pre: images ? serialize(before) : undefined });
  } else {
    state.log.append({
      op: 'update',
      db: coll.db,
      coll: coll.name,
      id: rec.id,
      desc: describeUpdate(before, after),
      doc: images ? bytes : undefined,
      pre: images ? serialize(before) : undefined,
    });
  }
}

export function deleteRecord(state: EmulatorState, coll: Collection, rec: DocRecord, before: Doc | null): void {
  coll.remove(rec, before);
  state.log.append({ op: 'delete', db: coll.db, coll: coll.name, id: rec.id, pre: coll.recordsImages && before ? serialize(before) : undefined });
}

export function dropCollection(state: EmulatorState, db: string, name: string): boolean {
  const d = state.storage.db(db);
  if (!d) return false;
  if (d.views.delete(name)) {
    state.storage.forgetIfEmpty(db);
    return true;
  }
  if (!d.collections.delete(name)) return false;
  state.log.append({ op: 'drop', db, coll: name });
  state.storage.forgetIfEmpty(db);
  return true;
}

export function dropDatabase(state: EmulatorState, db: string): void {
  const d = state.storage.db(db);
  if (!d) return;
  for (const name of [...d.collections.keys()]) {
    d.collections.delete(name);
    state.log.append({ op: 'drop', db, coll: name });
  }
  d.views.clear();
  state.storage.dbs.delete(db);
  state.log.append({ op: 'dropDatabase', db });
}

export function renameCollection(state: EmulatorState, from: [string, string], to: [string, string], dropTarget: boolean): void {
  const src = state.storage.collection(from[0], from[1]);
  if (!src) fail('NamespaceNotFound', 'source namespace does not exist');
  checkDbName(to[0]);
  checkCollectionName(to[1]);
  if (from[0] === to[0] && from[1] === to[1]) fail('IllegalOperation', "Can't rename a collection to itself");
  const target = state.storage.collection(to[0], to[1]);
  if (target || state.storage.view(to[0], to[1])) {
    if (!dropTarget) fail('NamespaceExists', 'target namespace exists');
    dropCollection(state, to[0], to[1]);
  }
  state.storage.db(from[0])?.collections.delete(from[1]);
  src.db = to[0];
  src.name = to[1];
  state.storage.ensureDb(to[0]).collections.set(to[1], src);
  state.log.append({ op: 'rename', db: from[0], coll: from[1], to: { db: to[0], coll: to[1] } });
  state.storage.forgetIfEmpty(from[0]);
}

/** True when two stored versions are the same document, field order included. */
export function sameDocument(a: Doc, b: Doc): boolean {
  return isPlainDoc(a) && isPlainDoc(b) && compareBson(a, b) === 0;
}
