import { afterEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { eventually } from '../../helpers/database.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { countingFeatureModel, features } from '../../helpers/models.js';
import { type AnyDocument, byId, connectMongoTest, createMongoTestDatabase, type MongoTestDatabase } from '../../helpers/mongodb.js';
import { startSidecarProcess } from '../../helpers/processes.js';

// Each test makes its own server when it needs one it can restart or starve of
// history; none shares state with another.
let database: MongoTestDatabase | undefined;
/** Restarting the server, or starving it of history, needs the emulated one. */
const emulated = !process.env.MONGODB_URI;
let db: Superduper | undefined;

afterEach(async () => {
  await db?.close();
  await database?.drop();
  db = undefined;
  database = undefined;
});

async function setUp(options: { oplogSize?: number; fresh?: boolean } = {}) {
  database = await createMongoTestDatabase('faults', options);
  db = await connectMongoTest(database);
  return { database, db };
}

/** Every document has the output of its current body, exactly one each. */
async function expectCurrent(database: MongoTestDatabase, name: string, transform: (body: string) => unknown = features): Promise<void> {
  const docs = await database.db.collection('docs').find({}).sort({ _id: 1 }).toArray();
  const outputs = await database.db.collection(`superduper.outputs.${name}`).find({}).sort({ _id: 1 }).toArray();
  expect(outputs.map((o) => o._id)).toEqual(docs.map((d) => d._id));
  for (const [i, doc] of docs.entries()) expect(outputs[i]!.output).toEqual(transform(doc.body as string));
}

/**
 * The test's own client finds its pooled connections reset, as an application's
 * would; the driver retries a write once, so its pool is cleared first by a ping
 * that may fail. (The sidecar's recovery is what the test is about.)
 */
async function reconnected(database: MongoTestDatabase): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await database.db.command({ ping: 1 });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Inserts, updates and deletes `n` documents' worth of changes, numbered from `from`. */
async function churn(database: MongoTestDatabase, from: number, n: number): Promise<void> {
  const docs = database.db.collection<AnyDocument>('docs');
  for (let i = from; i < from + n; i++) {
    await docs.insertOne({ _id: i, body: `doc ${i} first` });
    if (i % 3 === 0) await docs.updateOne(byId(i), { $set: { body: `doc ${i} second` } });
    if (i % 5 === 0) await docs.deleteOne(byId(i));
  }
}

describe('resume tokens', () => {
  it('a sidecar started after another stopped computes what changed meanwhile, and nothing twice', async () => {
    const { database, db } = await setUp();
    await database.db.createCollection('docs');
    const model = countingFeatureModel();
    await db.apply(model, listener({ name: 'docs_features', model: 'features', collection: 'docs', keys: ['body'] }));
    const first = await db.start({ reconcileMs: 100 });
    await churn(database, 0, 30);
    await db.waitFor('docs_features', { timeoutMs: 20_000 });
    await first.stop();

    await churn(database, 30, 30); // while no sidecar runs
    await db.start({ reconcileMs: 100 });
    await db.waitFor('docs_features', { timeoutMs: 20_000 });
    await expectCurrent(database, 'docs_features');
    const twice = [...model.calls].filter(([, count]) => count > 1);
    expect(twice).toEqual([]);
  });

  it.runIf(emulated)('a position fallen off the oplog is noticed: every listener re-scans, and outputs of documents deleted meanwhile go', async () => {
    const { database, db } = await setUp({ oplogSize: 50 });
    await database.db.createCollection('docs');
    const model = countingFeatureModel();
    await db.apply(model, listener({ name: 'docs_features', model: 'features', collection: 'docs', keys: ['body'] }));
    const first = await db.start({ reconcileMs: 100 });
    await churn(database, 0, 20);
    await db.waitFor('docs_features', { timeoutMs: 20_000 });
    await first.stop();

    // Far more events than the history keeps, including deletes of computed documents.
    await database.db.collection('docs').deleteMany({ _id: { $in: [1, 2, 4] } } as AnyDocument);
    await churn(database, 20, 60);
    await db.start({ reconcileMs: 100 });
    await eventually(async () => (await database.db.collection('superduper.meta').findOne({ _id: 'capture' as never }))?.history_lost_at, 20_000, 'the lost history noticed');
    await db.waitFor('docs_features', { timeoutMs: 30_000 });
    await expectCurrent(database, 'docs_features');
    await eventually(async () => /^re-scanned \(done .*\): the change stream's position had been lost/.test(String((await db.status())[0]?.note)), 10_000, 'the note to say the re-scan is done');
  });
});

describe('faults', () => {
  it.runIf(emulated)('the server restarting under a running sidecar loses nothing and computes nothing twice', async () => {
    const { database, db } = await setUp({ fresh: true });
    await database.db.createCollection('docs');
    const model = countingFeatureModel();
    await db.apply(model, listener({ name: 'docs_features', model: 'features', collection: 'docs', keys: ['body'] }));
    await db.start({ reconcileMs: 100 });
    await churn(database, 0, 20);
    await database.emulator!.restart({ downMs: 300 });
    await reconnected(database);
    await churn(database, 20, 20);
    database.emulator!.dropAllConnections();
    await reconnected(database);
    await churn(database, 40, 20);
    await db.waitFor('docs_features', { timeoutMs: 30_000 });
    await expectCurrent(database, 'docs_features');
    expect([...model.calls].filter(([, count]) => count > 1)).toEqual([]);
  });

  it('kill -9 of a sidecar mid-backfill and mid-stream: another finishes, every output current, one per document', async () => {
    const { database, db } = await setUp();
    const docs = database.db.collection<AnyDocument>('docs');
    await docs.insertMany(Array.from({ length: 300 }, (_, i) => ({ _id: i, body: `doc ${i}` })));
    const victim = await startSidecarProcess(database.uri, { slowModelMs: 100 });
    await db.apply(listener({ name: 'docs_upper', model: 'slow', collection: 'docs', keys: ['body'], settings: { batch_size: 10, chunk_size: 50, lease_seconds: 2 } }));
    await eventually(async () => (await database.db.collection('superduper.outputs.docs_upper').countDocuments({})) >= 50, 20_000, 'part of the backfill');
    victim.child.kill('SIGKILL');
    await victim.exited;

    const survivor = await startSidecarProcess(database.uri, { slowModelMs: 5, env: { SD_DEAD_AFTER_MS: '1500' } });
    await db.waitFor('docs_upper', { timeoutMs: 60_000 });
    await expectCurrent(database, 'docs_upper', (body) => body.toUpperCase());

    // Mid-stream: changes queued, the sidecar killed while computing them.
    for (let i = 0; i < 40; i++) await docs.updateOne(byId(i), { $set: { body: `changed ${i}` } });
    await eventually(async () => (await database.db.collection('superduper.queue').countDocuments({ owner: { $exists: true } })) > 0, 20_000, 'a claim under way');
    survivor.child.kill('SIGKILL');
    await survivor.exited;
    const last = await startSidecarProcess(database.uri, { slowModelMs: 5, env: { SD_DEAD_AFTER_MS: '1500' } });
    await db.waitFor('docs_upper', { timeoutMs: 60_000 });
    await expectCurrent(database, 'docs_upper', (body) => body.toUpperCase());
    last.child.kill('SIGTERM');
    await last.exited;
  });

  it('documents deleted, or moved out of the filter, while their backfill range computes leave no output behind', async () => {
    const { database, db } = await setUp();
    const docs = database.db.collection<AnyDocument>('docs');
    await docs.insertMany(Array.from({ length: 200 }, (_, i) => ({ _id: i, body: `doc ${i}`, keep: true })));
    const queue = database.db.collection('superduper.queue');
    let raced = false;
    let handledMeanwhile = false;
    // While the range holding 50..59 computes in one sidecar, those documents go
    // (deleted, or out of the filter), and the other sidecar handles their change events first.
    const model = functionModel({
      name: 'racing',
      output: { type: 'vector', dim: 3 },
      predict: async (inputs: string[]) => {
        if (!raced && inputs.includes('doc 50')) {
          raced = true;
          const queued = queue.watch([{ $match: { operationType: { $in: ['insert', 'update', 'replace'] } } }]);
          await queued.tryNext();
          await docs.deleteMany({ _id: { $gte: 50, $lt: 55 } } as AnyDocument);
          await docs.updateMany({ _id: { $gte: 55, $lt: 60 } } as AnyDocument, { $set: { keep: false } });
          // Their entries are queued (seen on the queue's own stream), then handled by the other lane.
          const keys = new Set<string>();
          while (keys.size < 10) keys.add(JSON.stringify(((await queued.next()) as { documentKey: unknown }).documentKey));
          await queued.close();
          await eventually(async () => (await queue.countDocuments({})) === 0, 20_000, 'the deletes handled by the other sidecar');
          handledMeanwhile = true;
        }
        return inputs.map(features);
      },
    });
    await db.apply(model, listener({ name: 'docs_racing', model: 'racing', collection: 'docs', keys: ['body'], filter: { keep: true }, settings: { chunk_size: 50, batch_size: 10 } }));
    await Promise.all([db.start({ reconcileMs: 50, concurrency: 1 }), db.start({ reconcileMs: 50, concurrency: 1 })]);
    await db.waitFor('docs_racing', { timeoutMs: 30_000 });
    expect(handledMeanwhile, 'the other sidecar handled the deletes while the range computed').toBe(true);
    const kept = (await docs.find({ keep: true }).sort({ _id: 1 }).toArray()).map((d) => d._id);
    const outputs = await database.db.collection('superduper.outputs.docs_racing').find({}).sort({ _id: 1 }).toArray();
    expect(kept).toHaveLength(190);
    expect(outputs.map((o) => o._id)).toEqual(kept);
  });

  it('two sidecars share a backfill and a stream of changes without computing anything twice', async () => {
    const { database, db } = await setUp();
    const docs = database.db.collection<AnyDocument>('docs');
    await docs.insertMany(Array.from({ length: 1000 }, (_, i) => ({ _id: i, body: `doc ${i}` })));
    const model = countingFeatureModel();
    await db.apply(model, listener({ name: 'docs_features', model: 'features', collection: 'docs', keys: ['body'], settings: { chunk_size: 50, batch_size: 20 } }));
    const [one, two] = await Promise.all([db.start({ reconcileMs: 50 }), db.start({ reconcileMs: 50 })]);
    for (let i = 0; i < 100; i++) await docs.updateOne(byId(i * 7), { $set: { body: `changed ${i}` } });
    await db.waitFor('docs_features', { timeoutMs: 30_000 });
    await expectCurrent(database, 'docs_features');
    expect([...model.calls].filter(([, count]) => count > 1)).toEqual([]);
    expect(one.state).not.toBe('failed');
    expect(two.state).not.toBe('failed');
  });
});
