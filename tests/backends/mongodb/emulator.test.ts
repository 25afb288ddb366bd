import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MongoClient, MongoServerError, ObjectId, type ChangeStreamDocument, type Document, type ResumeToken, type UpdateFilter } from 'mongodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type MongoEmulator } from '../../helpers/mongodb-emulator/index.js';

// The emulator is test infrastructure: these tests pin what the product's
// MongoDB backend relies on, through the real driver and the real shell.

const run = promisify(execFile);

/** Documents with any kind of _id (the driver's default type assumes ObjectId). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDoc = any;
/** Update operators on fields the driver's types cannot see through `any`. */
const asUpdate = (u: Document) => u as UpdateFilter<AnyDoc>;

let emu: MongoEmulator;
let client: MongoClient;
let dbCount = 0;
const clients: MongoClient[] = [];

async function connect(uri: string, options: ConstructorParameters<typeof MongoClient>[1] = {}): Promise<MongoClient> {
  const c = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000, ...options });
  clients.push(c);
  await c.connect();
  return c;
}

/** A database of the test's own, so tests pass alone and in any order. */
function freshDb() {
  dbCount += 1;
  return client.db(`t${process.pid}_${dbCount}`);
}

beforeAll(async () => {
  emu = await startEmulator();
  client = await connect(`${emu.uri}/test`);
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await emu.stop();
});

/** The next `n` events of a stream, failing after a while rather than hanging. */
async function nextEvents<T extends Document>(stream: { next(): Promise<T> }, n: number, ms = 10_000): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out with ${out.length}/${n} events`);
    out.push(
      await Promise.race([
        stream.next(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out with ${out.length}/${n} events`)), left)),
      ]),
    );
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('handshake', () => {
  it('is the primary of a one-member replica set, found with or without replicaSet in the URI', async () => {
    const hello = await client.db('admin').command({ hello: 1 });
    expect(hello).toMatchObject({ isWritablePrimary: true, secondary: false, setName: 'rs0', setVersion: 1, maxWireVersion: 21, ok: 1 });
    expect(hello.hosts).toEqual([`127.0.0.1:${emu.port}`]);
    expect(hello.topologyVersion).toBeUndefined();
    expect(hello.operationTime).toBeDefined();
    expect(hello.$clusterTime.clusterTime).toBeDefined();
    const rs = await connect(`${emu.uri}/test?replicaSet=rs0`);
    expect((await rs.db('admin').command({ ping: 1 })).ok).toBe(1);
    const info = await rs.db('admin').command({ buildInfo: 1 });
    expect(info.versionArray).toEqual([7, 0, 0, 0]);
  });

  it('refuses unknown commands and transactions clearly', async () => {
    const err = await client
      .db('admin')
      .command({ noSuchThing: 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MongoServerError);
    expect(err).toMatchObject({ code: 59, codeName: 'CommandNotFound', message: "no such command: 'noSuchThing'" });
    const session = client.startSession();
    try {
      session.startTransaction();
      const c = freshDb().collection<AnyDoc>('a');
      const txErr = await c
        .findOne({}, { session })
        .catch((e: unknown) => e);
      expect(txErr).toMatchObject({ code: 20, codeName: 'IllegalOperation' });
      expect(String((txErr as Error).message)).toMatch(/Transactions are not supported by the superduper test emulator/);
      // On a write, the driver rewrites code 20 into its MMAPv1 retryable-writes
      // message; the emulator's own error stays as originalError.
      const writeErr = await c.insertOne({ a: 1 }, { session }).catch((e: unknown) => e);
      expect((writeErr as { originalError?: unknown }).originalError).toMatchObject({ code: 20, codeName: 'IllegalOperation' });
    } finally {
      await session.abortTransaction().catch(() => undefined);
      await session.endSession();
    }
  });
});

describe('CRUD', () => {
  it('stores and finds documents by every kind of _id, keeping field order', async () => {
    const c = freshDb().collection<AnyDoc>('docs');
    const oid = new ObjectId();
    const ids: unknown[] = [oid, 'a-string', 42, 3.5, { tenant: 't1', n: 1 }, new Date(0)];
    for (const [i, _id] of ids.entries()) await c.insertOne({ _id, z: i, a: 'x', m: { b: 1, a: 2 } });
    for (const [i, _id] of ids.entries()) {
      const doc = await c.findOne({ _id });
      expect(doc).toEqual({ _id, z: i, a: 'x', m: { b: 1, a: 2 } });
      expect(Object.keys(doc ?? {})).toEqual(['_id', 'z', 'a', 'm']);
    }
    // Compound _id equality is field-order sensitive, as on the server.
    expect(await c.findOne({ _id: { n: 1, tenant: 't1' } })).toBeNull();
    const generated = await c.insertOne({ noId: true });
    expect(generated.insertedId).toBeInstanceOf(ObjectId);
    expect(await c.countDocuments()).toBe(ids.length + 1);
    expect(await c.countDocuments({ _id: { $in: [oid, 42, 'nope'] } })).toBe(2);
    const del = await c.deleteOne({ _id: 'a-string' });
    expect(del.deletedCount).toBe(1);
    const many = await c.deleteMany({ a: 'x' });
    expect(many.deletedCount).toBe(ids.length - 1);
  });

  it('refuses a duplicate _id with E11000, through insert and insertMany', async () => {
    const c = freshDb().collection<AnyDoc>('dups');
    await c.insertOne({ _id: 'k', v: 1 });
    const err = await c.insertOne({ _id: 'k', v: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MongoServerError);
    expect(err).toMatchObject({ code: 11000, keyPattern: { _id: 1 }, keyValue: { _id: 'k' } });
    expect((err as Error).message).toMatch(/^E11000 duplicate key error collection: .*dups index: _id_ dup key: \{ _id: "k" \}/);
    const bulk = await c.insertMany([{ _id: 'a' }, { _id: 'k' }, { _id: 'b' }], { ordered: false }).catch((e: unknown) => e);
    expect(bulk).toMatchObject({ code: 11000 });
    expect((bulk as { writeErrors: { index: number }[] }).writeErrors.map((w) => w.index)).toEqual([1]);
    expect(await c.countDocuments()).toBe(3);
  });

  it('enforces a unique secondary index, on insert and on update', async () => {
    const db = freshDb();
    const c = db.collection<AnyDoc>('users');
    await c.insertMany([{ email: 'a@x' }, { email: 'b@x' }]);
    const name = await c.createIndex({ email: 1 }, { unique: true });
    expect(name).toBe('email_1');
    await c.createIndex({ 'profile.age': 1, name: -1 });
    const indexes = await c.listIndexes().toArray();
    expect(indexes.map((i) => i.name)).toEqual(['_id_', 'email_1', 'profile.age_1_name_-1']);
    expect(indexes[1]).toMatchObject({ unique: true, key: { email: 1 } });
    await expect(c.insertOne({ email: 'a@x' })).rejects.toMatchObject({ code: 11000, keyValue: { email: 'a@x' } });
    await expect(c.updateOne({ email: 'b@x' }, { $set: { email: 'a@x' } })).rejects.toMatchObject({ code: 11000 });
    await c.updateOne({ email: 'b@x' }, { $set: { email: 'c@x' } });
    await c.insertOne({ email: 'b@x' });
    await c.dropIndex('email_1');
    await c.insertOne({ email: 'a@x' });
    await expect(c.createIndex({ email: 1 }, { unique: true })).rejects.toMatchObject({ code: 11000 });
  });

  it('applies update operators on dotted paths, array indexes and upserts', async () => {
    const c = freshDb().collection<AnyDoc>('upd');
    await c.insertOne({ _id: 1, a: { b: 1, c: { d: 1 } }, arr: [1, 2, 3], n: 5, tags: ['x'], items: [{ k: 1, v: 0 }, { k: 2, v: 0 }] });
    const r = await c.updateOne(
      { _id: 1 },
      asUpdate({
        $set: { 'a.c.d': 2, 'arr.1': 20, 'new.deep.field': true },
        $inc: { n: 2 },
        $push: { tags: { $each: ['y', 'z'] } },
        $unset: { 'a.b': '' },
      }),
    );
    expect(r).toMatchObject({ matchedCount: 1, modifiedCount: 1 });
    expect(await c.findOne({ _id: 1 })).toEqual({
      _id: 1,
      a: { c: { d: 2 } },
      arr: [1, 20, 3],
      n: 7,
      tags: ['x', 'y', 'z'],
      items: [
        { k: 1, v: 0 },
        { k: 2, v: 0 },
      ],
      new: { deep: { field: true } },
    });
    await c.updateOne({ _id: 1 }, asUpdate({ $mul: { n: 2 }, $min: { low: 3 }, $max: { high: 9 }, $addToSet: { tags: 'x' }, $pull: { arr: 20 }, $rename: { new: 'renamed' } }));
    await c.updateOne({ _id: 1 }, { $pop: { tags: 1 } });
    // Two operators on one path conflict, as on the server.
    await expect(c.updateOne({ _id: 1 }, { $set: { n: 1 }, $inc: { n: 1 } })).rejects.toMatchObject({ code: 40 });
    await c.updateOne({ _id: 1, 'items.k': 2 }, { $set: { 'items.$.v': 7 } });
    await c.updateOne({ _id: 1 }, { $inc: { 'items.$[e].v': 1 } }, { arrayFilters: [{ 'e.k': 1 }] });
    await c.updateOne({ _id: 1 }, { $currentDate: { touched: true } });
    const doc = await c.findOne({ _id: 1 });
    expect(doc).toMatchObject({ n: 14, low: 3, high: 9, tags: ['x', 'y'], arr: [1, 3], renamed: { deep: { field: true } }, items: [{ k: 1, v: 1 }, { k: 2, v: 7 }] });
    expect(doc?.touched).toBeInstanceOf(Date);
    // No change: matched but not modified.
    expect(await c.updateOne({ _id: 1 }, { $set: { n: 14 } })).toMatchObject({ matchedCount: 1, modifiedCount: 0 });
    const up = await c.updateOne({ _id: 'new', kind: 'k' }, { $set: { v: 1 }, $setOnInsert: { created: true } }, { upsert: true });
    expect(up).toMatchObject({ upsertedCount: 1, upsertedId: 'new', matchedCount: 0 });
    expect(await c.findOne({ _id: 'new' })).toEqual({ _id: 'new', kind: 'k', v: 1, created: true });
    await c.updateOne({ _id: 'new' }, { $set: { v: 2 }, $setOnInsert: { created: false } }, { upsert: true });
    expect(await c.findOne({ _id: 'new' })).toEqual({ _id: 'new', kind: 'k', v: 2, created: true });
    const rep = await c.replaceOne({ _id: 'new' }, { replaced: 1 });
    expect(rep.modifiedCount).toBe(1);
    expect(await c.findOne({ _id: 'new' })).toEqual({ _id: 'new', replaced: 1 });
    await expect(c.updateOne({ _id: 'new' }, { $set: { _id: 'other' } })).rejects.toMatchObject({ code: 66 });
    const many = await c.updateMany({}, { $set: { all: 1 } });
    expect(many.modifiedCount).toBe(2);
    // Bulk upserts by _id, as a backfill writes outputs.
    const bulk = await c.bulkWrite(
      [1, 2, 3].map((i) => ({ updateOne: { filter: { _id: `b${i}` }, update: { $set: { out: i } }, upsert: true } })),
      { ordered: false },
    );
    expect(bulk.upsertedCount).toBe(3);
    // Pipeline-style updates, and unacknowledged writes (OP_MSG moreToCome).
    await c.updateOne({ _id: 'b1' }, [{ $set: { doubled: { $multiply: ['$out', 2] } } }]);
    expect(await c.findOne({ _id: 'b1' })).toEqual({ _id: 'b1', out: 1, doubled: 2 });
    await c.insertOne({ _id: 'w0' }, { writeConcern: { w: 0 } });
    expect(await c.findOne({ _id: 'w0' })).toEqual({ _id: 'w0' });
  });

  it('findOneAndUpdate / findOneAndDelete / findOneAndReplace return the server values', async () => {
    const c = freshDb().collection<AnyDoc>('fam');
    await c.insertMany([
      { _id: 1, q: 1, v: 'a' },
      { _id: 2, q: 1, v: 'b' },
    ]);
    const before = await c.findOneAndUpdate({ q: 1 }, { $set: { v: 'z' } }, { sort: { _id: -1 }, includeResultMetadata: true });
    expect(before).toMatchObject({ ok: 1, value: { _id: 2, q: 1, v: 'b' }, lastErrorObject: { n: 1, updatedExisting: true } });
    const after = await c.findOneAndUpdate({ _id: 3 }, { $set: { v: 'n' } }, { upsert: true, returnDocument: 'after', projection: { v: 1, _id: 0 } });
    expect(after).toEqual({ v: 'n' });
    expect(await c.findOneAndReplace({ _id: 1 }, { r: 1 }, { returnDocument: 'after' })).toEqual({ _id: 1, r: 1 });
    expect(await c.findOneAndDelete({ _id: 1 })).toEqual({ _id: 1, r: 1 });
    expect(await c.findOneAndDelete({ _id: 1 })).toBeNull();
  });

  it('finds with filter, sort, projection, skip, limit and batchSize across getMores', async () => {
    const c = freshDb().collection<AnyDoc>('pages');
    await c.insertMany(Array.from({ length: 1000 }, (_, i) => ({ _id: i, g: i % 3, s: `k${String(999 - i).padStart(4, '0')}`, nested: { x: i } })));
    const page = await c.find({ _id: { $gte: 100 } }).sort({ _id: 1 }).skip(10).limit(250).batchSize(40).toArray();
    expect(page.map((d) => d._id)).toEqual(Array.from({ length: 250 }, (_, i) => 110 + i));
    const desc = await c.find({ g: 1 }, { projection: { s: 1 } }).sort({ s: 1 }).limit(3).toArray();
    expect(desc).toEqual([
      { _id: 997, s: 'k0002' },
      { _id: 994, s: 'k0005' },
      { _id: 991, s: 'k0008' },
    ]);
    expect(await c.find({ 'nested.x': { $lt: 3 } }).sort({ _id: -1 }).toArray()).toHaveLength(3);
    expect((await c.find().sort({ _id: -1 }).limit(2).toArray()).map((d) => d._id)).toEqual([999, 998]);
    // Pages by _id, the way a backfill walks a collection.
    let last = -1;
    let seen = 0;
    for (;;) {
      const batch = await c.find({ _id: { $gt: last } }).sort({ _id: 1 }).limit(300).toArray();
      if (batch.length === 0) break;
      seen += batch.length;
      last = batch[batch.length - 1]?._id as number;
    }
    expect(seen).toBe(1000);
    expect(await c.distinct('g')).toEqual([0, 1, 2]);
    expect(await c.estimatedDocumentCount()).toBe(1000);
    // An abandoned cursor is killed by the driver.
    const cursor = c.find().batchSize(10);
    await cursor.next();
    await cursor.close();
  });

  it('aggregates with $lookup on _id, and reads a view with find, aggregate and $lookup', async () => {
    const db = freshDb();
    await db.collection<AnyDoc>('authors').insertMany([
      { _id: 'a1', name: 'Ann' },
      { _id: 'a2', name: 'Bob' },
    ]);
    await db.collection<AnyDoc>('books').insertMany([
      { _id: 1, author: 'a1', title: 'X', pages: 100 },
      { _id: 2, author: 'a1', title: 'Y', pages: 300 },
      { _id: 3, author: 'a2', title: 'Z', pages: 200 },
    ]);
    const joined = await db
      .collection<AnyDoc>('books')
      .aggregate([{ $lookup: { from: 'authors', localField: 'author', foreignField: '_id', as: 'who' } }, { $unwind: '$who' }, { $project: { title: 1, name: '$who.name' } }, { $sort: { _id: 1 } }])
      .toArray();
    expect(joined).toEqual([
      { _id: 1, title: 'X', name: 'Ann' },
      { _id: 2, title: 'Y', name: 'Ann' },
      { _id: 3, title: 'Z', name: 'Bob' },
    ]);
    await db.createCollection('long_books', { viewOn: 'books', pipeline: [{ $match: { pages: { $gte: 200 } } }] });
    const listed = await db.listCollections({ name: 'long_books' }).toArray();
    expect(listed[0]).toMatchObject({ name: 'long_books', type: 'view' });
    expect((await db.collection<AnyDoc>('long_books').find({}).sort({ _id: 1 }).toArray()).map((d) => d._id)).toEqual([2, 3]);
    const viaView = await db
      .collection<AnyDoc>('authors')
      .aggregate([{ $lookup: { from: 'long_books', localField: '_id', foreignField: 'author', as: 'long' } }, { $project: { n: { $size: '$long' } } }, { $sort: { _id: 1 } }])
      .toArray();
    expect(viaView).toEqual([
      { _id: 'a1', n: 1 },
      { _id: 'a2', n: 1 },
    ]);
    const grouped = await db
      .collection<AnyDoc>('long_books')
      .aggregate([{ $group: { _id: '$author', total: { $sum: '$pages' } } }, { $sort: { _id: 1 } }])
      .toArray();
    expect(grouped).toEqual([
      { _id: 'a1', total: 300 },
      { _id: 'a2', total: 200 },
    ]);
    expect(await db.collection<AnyDoc>('books').aggregate([{ $match: { pages: { $gt: 150 } } }, { $count: 'n' }]).toArray()).toEqual([{ n: 2 }]);
  });

  it('creates, lists, renames and drops collections', async () => {
    const db = freshDb();
    await db.createCollection('one');
    await expect(db.createCollection('one', { capped: true, size: 1 })).rejects.toMatchObject({ code: 48 });
    await db.collection<AnyDoc>('two').insertOne({ a: 1 });
    expect((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).sort()).toEqual(['one', 'two']);
    await db.renameCollection('two', 'three');
    expect(await db.collection<AnyDoc>('three').countDocuments()).toBe(1);
    await expect(db.renameCollection('one', 'three')).rejects.toMatchObject({ code: 48 });
    await db.renameCollection('one', 'three', { dropTarget: true });
    expect(await db.collection<AnyDoc>('three').countDocuments()).toBe(0);
    const names = (await client.db('admin').admin().listDatabases()).databases.map((d) => d.name);
    expect(names).toContain(db.databaseName);
    expect(await db.collection<AnyDoc>('three').drop()).toBe(true);
    await db.collection<AnyDoc>('four').insertOne({ a: 1 });
    await db.dropDatabase();
    expect((await client.db('admin').admin().listDatabases()).databases.map((d) => d.name)).not.toContain(db.databaseName);
  });
});

describe('change streams', () => {
  const streams: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const s of streams.splice(0)) await s.close().catch(() => undefined);
  });

  it('reports insert, update (dotted updatedFields), replace and delete, with updateLookup', async () => {
    const c = freshDb().collection<AnyDoc>('cs');
    await c.insertOne({ _id: 'before-stream' });
    const stream = c.watch([], { fullDocument: 'updateLookup' });
    streams.push(stream);
    await stream.tryNext(); // opens the stream: what follows is after it
    await c.insertOne({ _id: 1, a: { b: 1, keep: true }, gone: 1 });
    await c.updateOne({ _id: 1 }, { $set: { 'a.b': 2 }, $unset: { gone: '' } });
    await c.replaceOne({ _id: 1 }, { r: true });
    await c.deleteOne({ _id: 1 });
    const [ins, upd, rep, del] = (await nextEvents(stream, 4)) as ChangeStreamDocument[] as Document[];
    const ns = { db: c.dbName, coll: c.collectionName };
    expect(ins).toMatchObject({ operationType: 'insert', ns, documentKey: { _id: 1 }, fullDocument: { _id: 1, a: { b: 1, keep: true }, gone: 1 } });
    expect(upd).toMatchObject({
      operationType: 'update',
      ns,
      documentKey: { _id: 1 },
      updateDescription: { updatedFields: { 'a.b': 2 }, removedFields: ['gone'], truncatedArrays: [] },
    });
    // updateLookup reads the document when the event is read: by then it is deleted.
    expect(upd?.fullDocument).toBeNull();
    expect(rep).toMatchObject({ operationType: 'replace', fullDocument: { _id: 1, r: true } });
    expect(del).toMatchObject({ operationType: 'delete', documentKey: { _id: 1 } });
    expect(del?.fullDocument).toBeUndefined();
    const times = [ins, upd, rep, del].map((e) => e?.clusterTime as { t: number; i: number });
    for (let i = 1; i < times.length; i++) {
      const a = times[i - 1] as { t: number; i: number };
      const b = times[i] as { t: number; i: number };
      expect(b.t > a.t || (b.t === a.t && b.i > a.i)).toBe(true);
    }
    expect(ins?.wallTime).toBeInstanceOf(Date);
    const tokens = [ins, upd, rep, del].map((e) => (e?._id as { _data: string })._data);
    expect([...tokens].sort()).toEqual(tokens);
  });

  it('updateLookup returns the current document while it exists', async () => {
    const c = freshDb().collection<AnyDoc>('lookup');
    await c.insertOne({ _id: 1, v: 0 });
    const stream = c.watch([{ $match: { operationType: 'update' } }], { fullDocument: 'updateLookup' });
    streams.push(stream);
    await stream.tryNext();
    await c.updateOne({ _id: 1 }, { $set: { v: 1 } });
    const [e] = (await nextEvents(stream, 1)) as Document[];
    expect(e).toMatchObject({ operationType: 'update', fullDocument: { _id: 1, v: 1 } });
  });

  it('resumes after a saved token with exactly the later events, and at an operation time', async () => {
    const c = freshDb().collection<AnyDoc>('resume');
    const stream = c.watch();
    streams.push(stream);
    await stream.tryNext();
    const opened = stream.resumeToken;
    for (let i = 1; i <= 5; i++) await c.insertOne({ _id: i });
    const events = (await nextEvents(stream, 5)) as Document[];
    const saved = events[1]?._id as ResumeToken;
    await stream.close();
    const resumed = c.watch([], { resumeAfter: saved });
    streams.push(resumed);
    const later = (await nextEvents(resumed, 3)) as Document[];
    expect(later.map((e) => e.documentKey._id)).toEqual([3, 4, 5]);
    expect(await resumed.tryNext()).toBeNull();
    const fromOpen = c.watch([], { startAfter: opened });
    streams.push(fromOpen);
    expect(((await nextEvents(fromOpen, 5)) as Document[]).map((e) => e.documentKey._id)).toEqual([1, 2, 3, 4, 5]);
    const atTime = c.watch([], { startAtOperationTime: events[3]?.clusterTime });
    streams.push(atTime);
    expect(((await nextEvents(atTime, 2)) as Document[]).map((e) => e.documentKey._id)).toEqual([4, 5]);
  });

  it('advances the resume token while idle (postBatchResumeToken)', async () => {
    const db = freshDb();
    const watched = db.collection<AnyDoc>('watched');
    const stream = watched.watch([], { maxAwaitTimeMS: 100 });
    streams.push(stream);
    expect(await stream.tryNext()).toBeNull();
    const first = stream.resumeToken as { _data: string };
    expect(first._data).toMatch(/^[0-9a-f]+$/);
    await db.collection<AnyDoc>('other').insertMany([{ a: 1 }, { a: 2 }]);
    expect(await stream.tryNext()).toBeNull();
    const second = stream.resumeToken as { _data: string };
    expect(second._data > first._data).toBe(true);
    // The idle token resumes after the unrelated writes, before what comes next.
    await watched.insertOne({ _id: 'after' });
    const resumed = watched.watch([], { resumeAfter: second });
    streams.push(resumed);
    expect(((await nextEvents(resumed, 1)) as Document[])[0]?.documentKey).toEqual({ _id: 'after' });
  });

  it('fails with ChangeStreamHistoryLost (286) when resuming before the kept history', async () => {
    const small = await startEmulator({ oplogSize: 10 });
    try {
      const c = (await connect(`${small.uri}/h`)).db('h').collection<AnyDoc>('c');
      const stream = c.watch();
      await stream.tryNext();
      await c.insertOne({ _id: 0 });
      const [first] = (await nextEvents(stream, 1)) as Document[];
      await stream.close();
      for (let i = 1; i <= 30; i++) await c.insertOne({ _id: i });
      const lost = c.watch([], { resumeAfter: first?._id as ResumeToken });
      const err = await lost.next().catch((e: unknown) => e);
      await lost.close();
      expect(err).toBeInstanceOf(MongoServerError);
      expect(err).toMatchObject({ code: 286, codeName: 'ChangeStreamHistoryLost' });
      expect((err as Error).message).toBe('Resume of change stream was not possible, as the resume point may no longer be in the oplog.');
    } finally {
      await small.stop();
    }
  });

  it('reports drop then invalidate, and closes; the invalidate token works with startAfter only', async () => {
    const db = freshDb();
    const c = db.collection<AnyDoc>('dropme');
    await c.insertOne({ _id: 1 });
    const stream = c.watch();
    streams.push(stream);
    await stream.tryNext();
    await c.drop();
    const [drop, invalidate] = (await nextEvents(stream, 2)) as Document[];
    expect(drop).toMatchObject({ operationType: 'drop', ns: { db: db.databaseName, coll: 'dropme' } });
    expect(invalidate).toMatchObject({ operationType: 'invalidate' });
    await expect(stream.next()).rejects.toThrow();
    expect(stream.closed).toBe(true);
    const refused = c.watch([], { resumeAfter: invalidate?._id as ResumeToken });
    await expect(refused.next()).rejects.toMatchObject({ code: 260 });
    await refused.close();
    const after = c.watch([], { startAfter: invalidate?._id as ResumeToken });
    streams.push(after);
    await c.insertOne({ _id: 'reborn' });
    expect(((await nextEvents(after, 1)) as Document[])[0]).toMatchObject({ operationType: 'insert', documentKey: { _id: 'reborn' } });
  });

  it("filters on the event's header before its documents, and still ends with the invalidate the match would drop", async () => {
    const db = freshDb();
    const c = db.collection<AnyDoc>('headers');
    const stream = c.watch([{ $match: { operationType: 'insert', 'documentKey._id': { $gte: 2 } } }, { $project: { documentKey: 1, 'fullDocument.v': 1 } }]);
    streams.push(stream);
    await stream.tryNext();
    await c.insertMany([
      { _id: 1, v: 'a' },
      { _id: 2, v: 'b' },
    ]);
    await c.updateOne({ _id: 2 }, { $set: { v: 'c' } });
    await c.drop();
    const [insert, invalidate] = (await nextEvents(stream, 2)) as Document[];
    expect(insert).toMatchObject({ documentKey: { _id: 2 }, fullDocument: { v: 'b' } });
    expect(invalidate).toMatchObject({ operationType: 'invalidate' });
  });

  it('gives post- and pre-images when the collection records them (whenAvailable, required)', async () => {
    const db = freshDb();
    await db.createCollection('images', { changeStreamPreAndPostImages: { enabled: true } });
    await db.createCollection('plain');
    const images = db.collection<AnyDoc>('images');
    const plain = db.collection<AnyDoc>('plain');
    await images.insertOne({ _id: 1, v: 0 });
    await plain.insertOne({ _id: 1, v: 0 });
    const stream = db.watch([{ $match: { operationType: 'update' } }], { fullDocument: 'whenAvailable', fullDocumentBeforeChange: 'whenAvailable' });
    streams.push(stream);
    await stream.tryNext();
    await images.updateOne({ _id: 1 }, { $set: { v: 1 } });
    await plain.updateOne({ _id: 1 }, { $set: { v: 1 } });
    const [withImages, without] = (await nextEvents(stream, 2)) as Document[];
    expect(withImages).toMatchObject({ ns: { coll: 'images' }, fullDocument: { _id: 1, v: 1 }, fullDocumentBeforeChange: { _id: 1, v: 0 } });
    expect(without).toMatchObject({ ns: { coll: 'plain' }, fullDocument: null, fullDocumentBeforeChange: null });
    const required = plain.watch([], { fullDocument: 'required' });
    streams.push(required);
    await required.tryNext();
    await plain.updateOne({ _id: 1 }, { $set: { v: 2 } });
    await expect(required.next()).rejects.toMatchObject({ code: 280 });
  });

  it('reports dropDatabase to a database stream: drop of each collection, dropDatabase, invalidate', async () => {
    const db = freshDb();
    await db.collection<AnyDoc>('c1').insertOne({ _id: 1 });
    const stream = db.watch();
    streams.push(stream);
    await stream.tryNext();
    await db.dropDatabase();
    const events = (await nextEvents(stream, 3)) as Document[];
    expect(events.map((e) => e.operationType)).toEqual(['drop', 'dropDatabase', 'invalidate']);
    expect(events[1]?.ns).toEqual({ db: db.databaseName });
  });

  it("refuses another emulator's token as history lost, rather than resuming at a wrong place", async () => {
    const other = await startEmulator();
    try {
      const c = (await connect(`${other.uri}/o`)).db('o').collection<AnyDoc>('c');
      const s1 = c.watch();
      await s1.tryNext();
      await c.insertOne({ _id: 1 });
      const [e] = (await nextEvents(s1, 1)) as Document[];
      await s1.close();
      const here = freshDb().collection<AnyDoc>('c');
      const s2 = here.watch([], { resumeAfter: e?._id as ResumeToken });
      await expect(s2.next()).rejects.toMatchObject({ code: 286 });
      await s2.close();
    } finally {
      await other.stop();
    }
  });

  it('watches a database and the cluster, including renames', async () => {
    const db = freshDb();
    const dbStream = db.watch();
    const clusterStream = client.watch();
    streams.push(dbStream, clusterStream);
    await dbStream.tryNext();
    await clusterStream.tryNext();
    await db.collection<AnyDoc>('x').insertOne({ _id: 1 });
    await db.collection<AnyDoc>('y').insertOne({ _id: 2 });
    await db.renameCollection('x', 'z');
    const dbEvents = (await nextEvents(dbStream, 3)) as Document[];
    expect(dbEvents.map((e) => [e.operationType, e.ns.coll])).toEqual([
      ['insert', 'x'],
      ['insert', 'y'],
      ['rename', 'x'],
    ]);
    expect(dbEvents[2]?.to).toEqual({ db: db.databaseName, coll: 'z' });
    const clusterEvents = (await nextEvents(clusterStream, 3)) as Document[];
    expect(clusterEvents.map((e) => e.operationType)).toEqual(['insert', 'insert', 'rename']);
  });

  /**
   * Writes from a client of their own, retried across the fault: a real
   * server's restart can fail a write too (the driver skips its retry when the
   * server is marked Unknown at that moment). A retry that finds its first
   * attempt applied (E11000) counts as done.
   */
  async function writer(dbName: string, collName: string) {
    const w = (await connect(`${emu.uri}/${dbName}`)).db(dbName).collection<AnyDoc>(collName);
    const insert = async (...docs: Document[]) => {
      for (let attempt = 0; ; attempt++) {
        try {
          await w.insertMany(docs);
          return;
        } catch (e) {
          if (attempt > 0 && (e as { code?: unknown }).code === 11000) return;
          if (attempt > 20) throw e;
          await sleep(100);
        }
      }
    };
    return { insert };
  }

  it('resumes by itself across emu.restart(), with every later event exactly once', async () => {
    const c = freshDb().collection<AnyDoc>('restart');
    const w = await writer(c.dbName, c.collectionName);
    const stream = c.watch([], { maxAwaitTimeMS: 200 });
    streams.push(stream);
    await stream.tryNext();
    await w.insert({ _id: 1 });
    expect(((await nextEvents(stream, 1)) as Document[])[0]?.documentKey).toEqual({ _id: 1 });
    const pending = nextEvents(stream, 3, 30_000);
    await sleep(100);
    await emu.restart({ downMs: 300 });
    await w.insert({ _id: 2 });
    await w.insert({ _id: 3 });
    await w.insert({ _id: 4 });
    const got = (await pending) as Document[];
    expect(got.map((e) => e.documentKey._id)).toEqual([2, 3, 4]);
    await w.insert({ _id: 5 });
    expect(((await nextEvents(stream, 1)) as Document[])[0]?.documentKey).toEqual({ _id: 5 });
    expect(await c.countDocuments()).toBe(5);
  });

  /**
   * Across reset connections a stream resumed from its last token misses and
   * repeats nothing. The driver (7.8) resumes by itself from most resets, but
   * one reset while a command waits for the socket to drain reaches the
   * stream as a bare `write ECONNRESET`, which it does not count as
   * resumable, so the stream ends: then it is opened again after its token,
   * as the product's capture does with its saved one.
   */
  it('a stream resumed from its token across dropAllConnections() misses and repeats nothing', async () => {
    const c = freshDb().collection<AnyDoc>('blip');
    const w = await writer(c.dbName, c.collectionName);
    let stream = c.watch([], { maxAwaitTimeMS: 200 });
    streams.push(stream);
    await stream.tryNext();
    const seen: unknown[] = [];
    const reading = (async () => {
      const deadline = Date.now() + 30_000;
      while (seen.length < 4 && Date.now() < deadline) {
        try {
          const event = (await stream.tryNext()) as Document | null;
          if (event) seen.push(event.documentKey._id);
        } catch {
          const token = stream.resumeToken;
          await stream.close().catch(() => {});
          stream = c.watch([], { maxAwaitTimeMS: 200, ...(token ? { resumeAfter: token } : {}) });
          streams.push(stream);
        }
      }
    })();
    await w.insert({ _id: 1 });
    await sleep(150);
    emu.dropAllConnections();
    await w.insert({ _id: 2 });
    emu.dropAllConnections();
    await w.insert({ _id: 3 }, { _id: 4 });
    await reading;
    expect(seen).toEqual([1, 2, 3, 4]);
  });
});

describe('mongosh', () => {
  const mongosh = join(process.cwd(), 'node_modules/.bin/mongosh');
  let home: string;
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'mongosh-home-'));
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  async function shell(args: string[]): Promise<string> {
    const { stdout } = await run(mongosh, args, {
      timeout: 60_000,
      // A home of its own: mongosh writes its history and config there.
      env: { ...process.env, HOME: home, MONGOSH_NO_UPDATE_CHECK: '1', DO_NOT_TRACK: '1' },
    });
    return stdout.trim();
  }

  it('runs --eval: inserts, aggregates with $lookup, prints JSON', async () => {
    const dbName = `sh${process.pid}`;
    const out = await shell([
      `${emu.uri}/${dbName}`,
      '--quiet',
      '--eval',
      `db.a.insertMany([{_id: 1, b: 'x'}, {_id: 2, b: 'y'}]);
       db.b.insertOne({_id: 'x', label: 'ex'});
       const r = db.a.aggregate([{$lookup: {from: 'b', localField: 'b', foreignField: '_id', as: 'j'}}, {$sort: {_id: 1}}]).toArray();
       print(EJSON.stringify(r));`,
    ]);
    expect(JSON.parse(out.split('\n').pop() ?? '')).toEqual([
      { _id: 1, b: 'x', j: [{ _id: 'x', label: 'ex' }] },
      { _id: 2, b: 'y', j: [] },
    ]);
  });

  it('runs a --file script', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mongosh-script-'));
    try {
      const file = join(dir, 'script.js');
      writeFileSync(
        file,
        `const c = db.getSiblingDB('shfile${process.pid}').items;
         c.insertMany([{n: 1}, {n: 2}, {n: 3}]);
         c.createIndex({n: 1}, {unique: true});
         c.updateOne({n: 2}, {$set: {twice: true}});
         print(JSON.stringify({count: c.countDocuments(), twice: c.findOne({twice: true}).n, indexes: c.getIndexes().map(i => i.name)}));`,
      );
      const out = await shell([`${emu.uri}/test`, '--quiet', '--file', file]);
      expect(JSON.parse(out.split('\n').pop() ?? '')).toEqual({ count: 3, twice: 2, indexes: ['_id_', 'n_1'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('scale', () => {
  // EMULATOR_BIG=1 to run: a million inserts and an _id-ordered scan, timed.
  it.runIf(process.env.EMULATOR_BIG)(
    'inserts 1,000,000 documents in batches of 1,000 and scans them in _id pages of 1,000',
    async () => {
      const c = freshDb().collection<AnyDoc>('big');
      const t0 = Date.now();
      for (let b = 0; b < 1000; b++) {
        await c.insertMany(Array.from({ length: 1000 }, (_, i) => ({ n: b * 1000 + i, text: `document number ${b * 1000 + i}` })));
      }
      const t1 = Date.now();
      let last: ObjectId | null = null;
      let seen = 0;
      for (;;) {
        const filter: Document = last ? { _id: { $gt: last } } : {};
        const page = await c.find(filter).sort({ _id: 1 }).limit(1000).toArray();
        if (page.length === 0) break;
        seen += page.length;
        last = page[page.length - 1]?._id as ObjectId;
      }
      const t2 = Date.now();
      console.log(`1M inserts: ${t1 - t0} ms; _id-ordered scan in pages of 1000: ${t2 - t1} ms; rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB`);
      expect(seen).toBe(1_000_000);
    },
    600_000,
  );
});
