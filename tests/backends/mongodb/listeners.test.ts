import { ObjectId, type Document } from 'mongodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { eventually } from '../../helpers/database.js';
import { countingFeatureModel, features } from '../../helpers/models.js';
import { type AnyDocument, connectMongoTest, createMongoTestDatabase, type MongoTestDatabase } from '../../helpers/mongodb.js';

let database: MongoTestDatabase;
let db: Superduper;
let model: ReturnType<typeof countingFeatureModel>;

beforeEach(async () => {
  database = await createMongoTestDatabase('listeners');
  db = await connectMongoTest(database);
  model = countingFeatureModel();
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

const outputsOf = (name: string) => database.db.collection(`superduper.outputs.${name}`);

/** Every document of the source that passes `filter` has the output of its current `body`, and nothing else has one. */
async function expectOutputsMatch(source: string, name: string, key: (doc: Document) => string, filter: Document = {}): Promise<void> {
  const docs = await database.db.collection(source).find(filter).sort({ _id: 1 }).toArray();
  const outputs = await outputsOf(name).find({}).sort({ _id: 1 }).toArray();
  expect(outputs.map((o) => o._id)).toEqual(docs.map((d) => d._id));
  for (const [i, doc] of docs.entries()) expect(outputs[i]!.output).toEqual(features(key(doc)));
}

describe('a listener on a collection', () => {
  it('backfills documents with every kind of _id, and follows inserts, updates, replaces and deletes', async () => {
    const docs = database.db.collection('docs');
    const oid = new ObjectId();
    await docs.insertMany([
      { _id: oid, body: 'an object id' },
      { _id: 'text-id', body: 'a string id 1' },
      { _id: 42, body: 'a number id 22' },
      { _id: { region: 'eu', n: 7 }, body: 'a compound id' },
    ] as AnyDocument[]);
    const [, result] = await db.apply(model, listener({ name: 'docs_features', model: 'features', collection: 'docs', keys: ['body'] }));
    expect(result).toMatchObject({ type: 'listener', action: 'created', version: 1, backfill: 4 });
    await db.start({ reconcileMs: 100 });
    await db.waitFor('docs_features', { timeoutMs: 20_000 });
    await expectOutputsMatch('docs', 'docs_features', (d) => d.body);

    await docs.insertOne({ _id: 'new', body: 'inserted later' } as AnyDocument);
    await docs.updateOne({ _id: 42 } as AnyDocument, { $set: { body: 'number id changed 333' } });
    await docs.replaceOne({ _id: 'text-id' } as AnyDocument, { body: 'replaced whole' });
    await docs.deleteOne({ _id: oid });
    await db.waitFor('docs_features', { timeoutMs: 20_000 });
    await expectOutputsMatch('docs', 'docs_features', (d) => d.body);
    const status = await db.status();
    expect(status).toMatchObject([{ listener: 'docs_features', state: 'current', pending: 0, in_flight: 0, failed: 0, done: 4, backfill_remaining: 0 }]);
  });

  it('reads dotted key paths, and an update that touches no key field computes nothing', async () => {
    const docs = database.db.collection('articles');
    await docs.insertMany([
      { _id: 1, meta: { title: 'first title' }, views: 0 },
      { _id: 2, meta: { title: 'second one' }, views: 0 },
    ] as AnyDocument[]);
    await db.apply(model, listener({ name: 'titles', model: 'features', collection: 'articles', keys: ['meta.title'] }));
    await db.start({ reconcileMs: 100 });
    await db.waitFor('titles', { timeoutMs: 20_000 });
    await expectOutputsMatch('articles', 'titles', (d) => d.meta.title);
    const before = model.calls.get('first title');

    await docs.updateOne({ _id: 1 } as AnyDocument, { $inc: { views: 1 } });
    await docs.updateOne({ _id: 1 } as AnyDocument, { $set: { 'meta.subtitle': 'not a key' } });
    await docs.updateOne({ _id: 2 } as AnyDocument, { $set: { 'meta.title': 'second changed' } });
    await db.waitFor('titles', { timeoutMs: 20_000 });
    expect(model.calls.get('first title')).toBe(before);
    expect(model.calls.get('second changed')).toBe(1);
    await expectOutputsMatch('articles', 'titles', (d) => d.meta.title);
  });

  it('keeps outputs only for documents that pass the filter, as they move in and out of it', async () => {
    const docs = database.db.collection('posts');
    await docs.insertMany([
      { _id: 1, body: 'published one', status: 'published' },
      { _id: 2, body: 'a draft', status: 'draft' },
    ] as AnyDocument[]);
    await db.apply(model, listener({ name: 'published', model: 'features', collection: 'posts', keys: ['body'], filter: { status: 'published' } }));
    await db.start({ reconcileMs: 100 });
    await db.waitFor('published', { timeoutMs: 20_000 });
    await expectOutputsMatch('posts', 'published', (d) => d.body, { status: 'published' });

    await docs.updateOne({ _id: 2 } as AnyDocument, { $set: { status: 'published' } });
    await docs.updateOne({ _id: 1 } as AnyDocument, { $set: { status: 'archived' } });
    await db.waitFor('published', { timeoutMs: 20_000 });
    await expectOutputsMatch('posts', 'published', (d) => d.body, { status: 'published' });
  });

  it('records rows the model fails on, with their _id, and retries them', async () => {
    const docs = database.db.collection('notes');
    await docs.insertMany([{ _id: 1, body: 'fine' }, { _id: 2, body: 123 }] as AnyDocument[]);
    await db.apply(model, listener({ name: 'notes_features', model: 'features', collection: 'notes', keys: ['body'], settings: { max_attempts: 1 } }));
    await db.start({ reconcileMs: 100 });
    const waited = await db.waitFor('notes_features', { timeoutMs: 20_000 });
    expect(waited.failed).toMatchObject([{ listener: 'notes_features', primary_key: ['2'] }]);
    const failures = await db.failures('notes_features');
    expect(failures).toMatchObject([{ listener: 'notes_features', primary_key: ['2'], attempts: 1 }]);
    expect(failures[0]!.error).toMatch(/match|text|string/i);
    // Readable from mongosh too.
    expect(await database.db.collection('superduper.failures').countDocuments({ listener: 'notes_features' })).toBe(1);

    await docs.updateOne({ _id: 2 } as AnyDocument, { $set: { body: 'fixed now' } });
    await db.waitFor('notes_features', { timeoutMs: 20_000 });
    expect(await db.failures('notes_features')).toEqual([]);
    await expectOutputsMatch('notes', 'notes_features', (d) => d.body);
  });

  it('stops with a clear status when its collection is dropped or renamed, and keeps running the others', async () => {
    await database.db.collection('a').insertOne({ _id: 1, body: 'in a' } as AnyDocument);
    await database.db.collection('b').insertOne({ _id: 1, body: 'in b' } as AnyDocument);
    await database.db.collection('c').insertOne({ _id: 1, body: 'in c' } as AnyDocument);
    await db.apply(
      model,
      listener({ name: 'on_a', model: 'features', collection: 'a', keys: ['body'] }),
      listener({ name: 'on_b', model: 'features', collection: 'b', keys: ['body'] }),
      listener({ name: 'on_c', model: 'features', collection: 'c', keys: ['body'] }),
    );
    const sidecar = await db.start({ reconcileMs: 100 });
    await db.waitFor(undefined, { timeoutMs: 20_000 });
    await database.db.collection('a').drop();
    await database.db.collection('b').rename('b_renamed');
    await eventually(async () => {
      const status = await db.status();
      return status.filter((s) => s.state === 'stopped').length === 2;
    }, 20_000, 'both listeners stopped');
    const status = await db.status();
    expect(status.find((s) => s.listener === 'on_a')!.note).toMatch(/collection "a" was dropped/);
    expect(status.find((s) => s.listener === 'on_b')!.note).toMatch(/renamed to "b_renamed"/);
    await database.db.collection('c').insertOne({ _id: 2, body: 'c goes on' } as AnyDocument);
    await db.waitFor('on_c', { timeoutMs: 20_000 });
    await expectOutputsMatch('c', 'on_c', (d) => d.body);
    expect(sidecar.state).not.toBe('failed');
  });

  it('refuses a listener on a collection that does not exist, naming it, and writes nothing', async () => {
    await expect(db.apply(model, listener({ name: 'nowhere', model: 'features', collection: 'Missing Coll', keys: ['body'] }))).rejects.toThrow(
      /collection "Missing Coll" does not exist/,
    );
    expect(await database.db.collection('superduper.listeners').countDocuments({})).toBe(0);
  });
});
