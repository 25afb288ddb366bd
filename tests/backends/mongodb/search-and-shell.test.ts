import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { countingFeatureModel, features } from '../../helpers/models.js';
import { type AnyDocument, connectMongoTest, createMongoTestDatabase, mongosh, type MongoTestDatabase } from '../../helpers/mongodb.js';

const SNIPPET = 'mongosh/superduper.js';
const BODIES = ['alpha one', 'beta 22', 'gamma 333', 'delta four 4444', 'epsilon', 'zeta 5 five'];

let database: MongoTestDatabase;
let db: Superduper;

beforeEach(async () => {
  database = await createMongoTestDatabase('search');
  db = await connectMongoTest(database);
  await database.db.collection<AnyDocument>('docs').insertMany(BODIES.map((body, i) => ({ _id: i + 1, body, lang: i % 2 === 0 ? 'en' : 'fr' })));
  await db.apply(
    countingFeatureModel(),
    listener({ name: 'docs_features', model: 'features', collection: 'docs', keys: ['body'] }),
    vectorIndex({ name: 'docs_search', listener: 'docs_features' }),
  );
  await db.start({ reconcileMs: 100 });
  await db.waitFor('docs_features', { timeoutMs: 20_000 });
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

const cosine = (a: number[], b: number[]) => {
  const dot = a.reduce((sum, x, i) => sum + x * b[i]!, 0);
  return dot / (Math.hypot(...a) * Math.hypot(...b));
};

/** The ids of the documents, best first by cosine similarity to the query's features (ties by _id). */
function expected(query: string, k: number, only?: (i: number) => boolean): number[] {
  const q = features(query);
  return BODIES.map((body, i) => ({ id: i + 1, score: cosine(features(body), q) }))
    .filter((hit) => !only || only(hit.id - 1))
    .sort((a, b) => b.score - a.score || a.id - b.id)
    .slice(0, k)
    .map((hit) => hit.id);
}

describe('search', () => {
  it('search() with a vector, a text embedded by a sidecar, and a pre-filter on the source documents', async () => {
    const byVector = await db.search('docs_search', features('gamma 333'), { k: 3 });
    expect(byVector.map((hit) => Number(hit.id))).toEqual(expected('gamma 333', 3));
    expect(byVector[0]!.score).toBeCloseTo(1, 6);

    const byText = await db.search('docs_search', 'delta 99', { k: 2 });
    expect(byText.map((hit) => Number(hit.id))).toEqual(expected('delta 99', 2));

    const filtered = await db.search('docs_search', 'delta 99', { k: 2, filter: { lang: 'fr' } });
    expect(filtered.map((hit) => Number(hit.id))).toEqual(expected('delta 99', 2, (i) => i % 2 === 1));
  });

  it('refuses a query of the wrong dimension and an unknown index, naming them', async () => {
    await expect(db.search('docs_search', [1, 2], { k: 3 })).rejects.toThrow(/docs_search.*3 dimensions.*2/);
    await expect(db.search('no_such_index', [1, 2, 3], { k: 3 })).rejects.toThrow(/no vector index named 'no_such_index'/);
  });
});

describe('from mongosh', () => {
  it('joins outputs to their documents with $lookup; vectors are arrays of numbers', async () => {
    const { last, stderr } = await mongosh(
      database.uri,
      `const joined = db.docs.aggregate([
         {$lookup: {from: 'superduper.outputs.docs_features', localField: '_id', foreignField: '_id', as: 'features'}},
         {$project: {body: 1, vector: {$arrayElemAt: ['$features.output', 0]}}},
         {$sort: {_id: 1}}]).toArray();
       print(EJSON.stringify(joined));`,
    );
    expect(stderr).toBe('');
    expect(last).toEqual(BODIES.map((body, i) => ({ _id: i + 1, body, vector: features(body) })));
  });

  it('searches a vector index with a text query through the shipped snippet (a sidecar embeds it)', async () => {
    const { last, stderr } = await mongosh(
      database.uri,
      `const hits = superduper.like('docs_search', 'delta 99', 3);
       print(EJSON.stringify(hits.map((h) => ({ _id: h._id, body: h.document.body, score: h.score }))));`,
      { load: [SNIPPET] },
    );
    expect(stderr).toBe('');
    const hits = last as Array<{ _id: number; body: string; score: number }>;
    expect(hits.map((hit) => hit._id)).toEqual(expected('delta 99', 3));
    expect(hits[0]!.body).toBe(BODIES[hits[0]!._id - 1]);
  });

  it('reads status and failures, and declares a listener by inserting its spec (the result written back)', async () => {
    await database.db.collection('notes').insertMany([{ _id: 'a', text: 'first note' }, { _id: 'b', text: 'second 2' }] as AnyDocument[]);
    const { last, stderr } = await mongosh(
      database.uri,
      `const result = superduper.apply({ type: 'listener', name: 'notes_features', model: 'features', collection: 'notes', keys: ['text'] });
       let refused;
       try { superduper.apply({ type: 'listener', name: 'bad', model: 'features', collection: 'notes', key: ['text'] }); } catch (e) { refused = e.message; }
       const stored = db.getCollection('superduper.components').findOne({ name: 'bad' });
       print(EJSON.stringify({ result, refused, stored: { status: stored.status, error: stored.error },
                               status: superduper.status().map((s) => s.listener).sort() }));`,
      { load: [SNIPPET] },
    );
    expect(stderr).toBe('');
    expect(last).toMatchObject({
      result: [{ type: 'listener', name: 'notes_features', action: 'created', version: 1, backfill: 2 }],
      refused: expect.stringMatching(/unknown field "key"/),
      stored: { status: 'failed', error: expect.stringMatching(/unknown field "key"/) },
      status: ['docs_features', 'notes_features'],
    });
    await db.waitFor('notes_features', { timeoutMs: 20_000 });
    const outputs = await database.db.collection('superduper.outputs.notes_features').find({}).sort({ _id: 1 }).toArray();
    expect(outputs.map((o) => o.output)).toEqual([features('first note'), features('second 2')]);
  });
});
