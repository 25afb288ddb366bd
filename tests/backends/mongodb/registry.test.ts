import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { eventually } from '../../helpers/database.js';
import { countingFeatureModel, features } from '../../helpers/models.js';
import { type AnyDocument, byId, connectMongoTest, createMongoTestDatabase, type MongoTestDatabase } from '../../helpers/mongodb.js';

let database: MongoTestDatabase;
let db: Superduper;

beforeEach(async () => {
  database = await createMongoTestDatabase('registry');
  db = await connectMongoTest(database);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

const names = async () => (await database.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).sort();

describe('versions', () => {
  it('same spec: unchanged; new settings: updated in place; new keys: a version built beside the current one, then swapped in', async () => {
    const docs = database.db.collection<AnyDocument>('docs');
    await docs.insertMany([{ _id: 1, body: 'one', title: 'first' }, { _id: 2, body: 'two 2', title: 'second' }]);
    const model = countingFeatureModel();
    const spec = { name: 'docs_features', model: 'features', collection: 'docs', keys: ['body'] };
    await db.apply(model, listener(spec));
    await db.start({ reconcileMs: 100 });
    await db.waitFor('docs_features', { timeoutMs: 20_000 });

    expect(await db.apply(listener(spec))).toMatchObject([{ action: 'unchanged', version: 1 }]);
    expect(await db.apply(listener({ ...spec, settings: { batch_size: 7 } }))).toMatchObject([{ action: 'updated', version: 1 }]);
    expect(await db.apply(listener({ ...spec, keys: ['title'] }))).toMatchObject([{ action: 'rebuilding', version: 2, backfill: 2 }]);
    await eventually(async () => (await db.status()).every((s) => s.version === 2 && s.state === 'current'), 20_000, 'version 2 promoted');
    const outputs = await database.db.collection('superduper.outputs.docs_features').find({}).sort({ _id: 1 }).toArray();
    expect(outputs.map((o) => o.output)).toEqual([features('first'), features('second')]);
    expect((await names()).filter((n) => n.startsWith('superduper.outputs.'))).toEqual(['superduper.outputs.docs_features', 'superduper.outputs.docs_features.v2']);
  });

  it('a changed model rebuilds its listeners; the old outputs serve, frozen, until the new ones are complete', async () => {
    await database.db.collection<AnyDocument>('docs').insertMany([{ _id: 1, body: 'one' }]);
    const v1 = functionModel({ name: 'm', output: { type: 'text' }, version: '1', predict: (xs: string[]) => xs.map((x) => `v1 ${x}`) });
    const v2 = functionModel({ name: 'm', output: { type: 'text' }, version: '2', predict: (xs: string[]) => xs.map((x) => `v2 ${x}`) });
    await db.apply(v1, listener({ name: 'docs_m', model: 'm', collection: 'docs', keys: ['body'] }));
    await db.start({ reconcileMs: 100 });
    await db.waitFor('docs_m', { timeoutMs: 20_000 });
    const [result] = await db.apply(v2);
    expect(result).toMatchObject({ type: 'model', action: 'updated', rebuilding: ['docs_m'] });
    await eventually(async () => {
      const outputs = await database.db.collection('superduper.outputs.docs_m').find({}).toArray();
      return outputs.length === 1 && outputs[0]!.output === 'v2 one';
    }, 20_000, 'outputs of the new model');
  });
});

describe('bad specs and hostile names', () => {
  it('refuses bad specs naming the listener and what to do, and writes nothing', async () => {
    await database.db.createCollection('docs');
    const model = countingFeatureModel();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ type: 'listener', name: 'l', model: 'features', collection: 'docs', key: ['body'] }, /listener "l": unknown field "key"/],
      [{ type: 'listener', name: 'l', model: 'features', collection: 'docs', keys: [] }, /listener "l": "keys" must be a non-empty array/],
      [{ type: 'listener', name: 'l', model: 'features', collection: 'docs', keys: ['body'], filter: "status = 'x'" }, /"filter" must be a MongoDB query document/],
      [{ type: 'listener', name: 'l', model: 'nope', collection: 'docs', keys: ['body'] }, /listener "l": unknown model "nope"/],
      [{ type: 'listener', name: 'l', model: 'features', collection: 'docs', keys: ['body'], settings: { batch: 3 } }, /unknown setting "batch"/],
      [{ type: 'listener', name: 'a.b', model: 'features', collection: 'docs', keys: ['body'] }, /may not contain "."/],
      [{ type: 'listener', name: 'l', model: 'features', collection: 'superduper.listeners', keys: ['body'] }, /cannot be listened to/],
      [{ type: 'vector_index', name: 'v', listener: 'nope' }, /vector index "v": unknown listener 'nope'/],
      [{ type: 'gadget', name: 'g' }, /unknown component type 'gadget'/],
      [{ type: 'trainer', name: 't', collection: 'docs', features: ['n'], target: 'y', task: 'classification' }, /trainer 't': trainers run on PostgreSQL and the embedded database; MongoDB has none yet/],
      [{ type: 'schedule', name: 's', cron: '0 3 * * *', action: { refresh: 'l' } }, /schedule 's': schedules run on PostgreSQL/],
    ];
    for (const [spec, message] of cases) await expect(db.apply(model, spec), JSON.stringify(spec)).rejects.toThrow(message);
    expect(await database.db.collection('superduper.listeners').countDocuments({})).toBe(0);
    expect(await database.db.collection('superduper.models').countDocuments({ _id: 'features' as never })).toBe(0);
  });

  it('works on collections and fields named with quotes, spaces, upper case and semicolons', async () => {
    const collection = `My "Docs"; DROP it's`;
    const field = 'Body Text; "x"';
    await database.db.collection<AnyDocument>(collection).insertMany([{ _id: 'A b', [field]: 'quoted one' }, { _id: "c'd", [field]: 'second 2' }]);
    const name = `it's "quoted"`;
    await db.apply(countingFeatureModel(), listener({ name, model: 'features', collection, keys: [field] }), vectorIndex({ name: `${name} index`, listener: name }));
    await db.start({ reconcileMs: 100 });
    await db.waitFor(name, { timeoutMs: 20_000 });
    await database.db.collection<AnyDocument>(collection).updateOne(byId('A b'), { $set: { [field]: 'changed 11' } });
    await db.waitFor(name, { timeoutMs: 20_000 });
    const outputs = await database.db.collection(`superduper.outputs.${name}`).find({}).sort({ _id: 1 }).toArray();
    expect(outputs.map((o) => [o._id, o.output])).toEqual([
      ['A b', features('changed 11')],
      ["c'd", features('second 2')],
    ]);
    const hits = await db.search(`${name} index`, features('second 2'), { k: 1 });
    expect(hits[0]!.id).toBe('"c\'d"');
    expect(await db.remove(name, { cascade: true })).toMatchObject([{ type: 'vector_index' }, { type: 'listener', action: 'removed' }]);
    expect((await names()).filter((n) => n.startsWith('superduper.outputs.'))).toEqual([]);
  });

  it('refuses to remove what others use, and names what is missing', async () => {
    await database.db.createCollection('docs');
    await db.apply(countingFeatureModel(), listener({ name: 'l', model: 'features', collection: 'docs', keys: ['body'] }), vectorIndex({ name: 'v', listener: 'l' }));
    await expect(db.remove('features')).rejects.toThrow(/model "features" is used by l$/);
    await expect(db.remove('l')).rejects.toThrow(/listener "l" is searched by vector index\(es\) v/);
    await expect(db.remove('nothing')).rejects.toThrow(/no application, model, listener or vector index named 'nothing'/);
    expect(await db.remove('l', { keepOutputs: true, cascade: true })).toMatchObject([{ name: 'v' }, { name: 'l' }]);
    expect(await names()).toContain('superduper.outputs.l.v1');
  });
});
