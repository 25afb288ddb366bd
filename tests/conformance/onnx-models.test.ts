import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { onnxModel } from '../../src/components/model.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { linearModel } from '../../src/models/onnx-builder.js';
import { housePriceGraph, linearRegressionGraph, logisticRegressionGraph } from '../helpers/sklearn-graphs.js';

// Tabular ONNX models as scikit-learn exports them (skl2onnx): ai.onnx.ml operators,
// string labels, a ZipMap of class probabilities, several named inputs.

let database: TestDatabase;
let db: Superduper;

beforeAll(async () => {
  database = await createTestDatabase('onnx_models');
  db = await connectTest(database);
  await db.start({ reconcileMs: 100 });
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

const classifier = logisticRegressionGraph({
  classes: ['spam', 'ham'],
  coefficients: [
    [2, -2],
    [-2, 2],
  ],
  intercepts: [0, 0],
});

/** Table mails, which three tests read (created by the first that runs). */
async function mails(): Promise<void> {
  await database.sql.query(`CREATE TABLE IF NOT EXISTS mails (id int PRIMARY KEY, links real, words real)`);
  await database.sql.query(`INSERT INTO mails VALUES (1, 5, 1), (2, 0, 4), (3, 1, 1) ON CONFLICT (id) DO NOTHING`);
}

/** Table points, which two tests read (created by the first that runs). */
async function points(): Promise<void> {
  await database.sql.query(`CREATE TABLE IF NOT EXISTS points (id int PRIMARY KEY, xy real[])`);
  await database.sql.query(`INSERT INTO points VALUES (1, '{1,1}'), (2, '{2,0}'), (3, '{0,-1}') ON CONFLICT (id) DO NOTHING`);
}

describe('scikit-learn style ONNX models', () => {
  it('a classifier stores its label and class probabilities as jsonb', async () => {
    await mails();
    await db.apply(
      onnxModel({ name: 'spam_clf', file: classifier, output: { type: 'jsonb' }, outputs: { label: 'output_label', probabilities: 'output_probability' } }),
      listener({ name: 'mails_spam', model: 'spam_clf', table: 'mails', keys: ['links', 'words'] }),
    );
    await db.waitUntilIdle({ listeners: ['mails_spam'] });
    const { rows } = await database.sql.query(
      `SELECT id, output->>'label' AS label, (output->'probabilities'->>'spam')::float AS spam, (output->'probabilities'->>'ham')::float AS ham
         FROM superduper.out_mails_spam ORDER BY id`,
    );
    expect(rows.map((r) => [r.id, r.label])).toEqual([
      [1, 'spam'],
      [2, 'ham'],
      [3, 'spam'], // a tie: the first class wins, as in scikit-learn
    ]);
    // LOGISTIC then L1 normalisation: spam = σ(2d) / (σ(2d) + σ(-2d)) = σ(2d), d = links - words.
    const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
    expect(rows[0].spam).toBeCloseTo(sigmoid(8), 5);
    expect(rows[1].ham).toBeCloseTo(sigmoid(8), 5);
    expect(rows[2].spam).toBeCloseTo(0.5, 5);
    for (const row of rows) expect(row.spam + row.ham).toBeCloseTo(1, 5);
  });

  it('with no output named, a jsonb model stores every graph output under its own name', async () => {
    await mails();
    await db.apply(
      onnxModel({ name: 'spam_clf_all', file: classifier, output: { type: 'jsonb' } }),
      listener({ name: 'mails_spam_all', model: 'spam_clf_all', table: 'mails', keys: ['links', 'words'] }),
    );
    await db.waitUntilIdle({ listeners: ['mails_spam_all'] });
    const { rows } = await database.sql.query(`SELECT output FROM superduper.out_mails_spam_all WHERE id = 2`);
    expect(Object.keys(rows[0].output).sort()).toEqual(['output_label', 'output_probability']);
    expect(rows[0].output.output_label).toBe('ham');
  });

  it('a regressor reads an array column and stores a float', async () => {
    await points();
    await db.apply(
      onnxModel({ name: 'plane', file: linearRegressionGraph({ coefficients: [2, 3], intercept: 1 }), output: { type: 'float' } }),
      listener({ name: 'points_plane', model: 'plane', table: 'points', keys: ['xy'] }),
    );
    await db.waitUntilIdle({ listeners: ['points_plane'] });
    const { rows } = await database.sql.query(`SELECT id, output FROM superduper.out_points_plane ORDER BY id`);
    expect(rows.map((r) => [r.id, r.output])).toEqual([
      [1, 6],
      [2, 5],
      [3, -2],
    ]);
  });

  it('several named inputs (a string and an integer) are fed from key columns of the same names', async () => {
    await database.sql.query(`CREATE TABLE houses (id int PRIMARY KEY, city text, rooms int)`);
    await database.sql.query(`INSERT INTO houses VALUES (1, 'paris', 3), (2, 'lyon', 1), (3, 'nice', 2)`);
    await db.apply(
      onnxModel({ name: 'price', file: housePriceGraph({ cities: ['paris', 'lyon'], base: [100, 50], perRoom: 10 }), output: { type: 'float' } }),
      listener({ name: 'houses_price', model: 'price', table: 'houses', keys: ['city', 'rooms'] }),
    );
    await db.waitUntilIdle({ listeners: ['houses_price'] });
    const { rows } = await database.sql.query(`SELECT id, output FROM superduper.out_houses_price ORDER BY id`);
    // An unknown city encodes as all zeros (OneHotEncoder zeros=1): only the rooms count.
    expect(rows.map((r) => r.output)).toEqual([130, 60, 20]);
  });

  it('config.inputs maps graph inputs to columns with other (hostile) names', async () => {
    await database.sql.query(`CREATE TABLE "Flats; x" ("Town Name" text, "N rooms" int, "ID" int PRIMARY KEY)`);
    await database.sql.query(`INSERT INTO "Flats; x" VALUES ('lyon', 4, 1)`);
    await db.apply(
      onnxModel({
        name: 'price mapped',
        file: housePriceGraph({ cities: ['paris', 'lyon'], base: [100, 50], perRoom: 10 }),
        output: { type: 'float' },
        inputs: { city: ['Town Name'], rooms: ['N rooms'] },
      }),
      listener({ name: 'flats_price', model: 'price mapped', table: 'Flats; x', keys: ['Town Name', 'N rooms'] }),
    );
    await db.waitUntilIdle({ listeners: ['flats_price'] });
    const { rows } = await database.sql.query(`SELECT output FROM superduper.out_flats_price`);
    expect(rows).toEqual([{ output: 90 }]);
  });

  it('a mapping to an input the graph lacks is a load failure naming the model and the inputs the graph has', async () => {
    await database.sql.query(`CREATE TABLE towns (id int PRIMARY KEY, city text, rooms int); INSERT INTO towns VALUES (1, 'paris', 1)`);
    await db.apply(
      onnxModel({
        name: 'price_typo',
        file: housePriceGraph({ cities: ['paris'], base: [1], perRoom: 1 }),
        output: { type: 'float' },
        inputs: { town: ['city'], rooms: ['rooms'] },
      }),
      listener({ name: 'towns_price', model: 'price_typo', table: 'towns', keys: ['city', 'rooms'], settings: { max_attempts: 1 } }),
    );
    await db.waitUntilIdle({ listeners: ['towns_price'] });
    const [failure] = await db.failures('towns_price');
    expect(failure!.error).toBe(
      'could not load model "price_typo": ONNX model "price_typo": config.inputs names "town", which the graph does not have (inputs: city, rooms)',
    );
  });

  it('an output name the graph lacks is a load failure listing the outputs it has', async () => {
    await mails();
    await db.apply(
      onnxModel({ name: 'clf_typo', file: classifier, output: { type: 'text' }, outputName: 'label' }),
      listener({ name: 'mails_typo', model: 'clf_typo', table: 'mails', keys: ['links', 'words'], settings: { max_attempts: 1 } }),
    );
    await db.waitUntilIdle({ listeners: ['mails_typo'] });
    const failures = await db.failures('mails_typo');
    expect(failures).toHaveLength(3);
    expect(failures[0]!.error).toBe('could not load model "clf_typo": ONNX model "clf_typo": no output named "label" (outputs: output_label, output_probability)');
  });

  it('a model loads once per process, however many batches and lanes use it', async () => {
    await database.sql.query(`CREATE TABLE many_points (id int PRIMARY KEY, xy real[])`);
    await database.sql.query(`INSERT INTO many_points SELECT g, ARRAY[g, 1] FROM generate_series(1, 600) g`);
    await db.apply(
      onnxModel({ name: 'plane_once', file: linearRegressionGraph({ coefficients: [1, 0], intercept: 0 }), output: { type: 'float' } }),
      listener({ name: 'many_plane', model: 'plane_once', table: 'many_points', keys: ['xy'], settings: { chunk_size: 40, batch_size: 8 } }),
    );
    await db.waitUntilIdle({ listeners: ['many_plane'] });
    const { rows } = await database.sql.query(`SELECT count(*)::int AS n, sum(output)::int AS total FROM superduper.out_many_plane`);
    expect(rows[0]).toEqual({ n: 600, total: (600 * 601) / 2 });
    expect(db.models.loads.filter((load) => load.model === 'plane_once')).toHaveLength(1);
  });

  it('a float tensor declared jsonb is stored as a JSON array', async () => {
    await points();
    await db.apply(
      onnxModel({ name: 'spread', file: linearModel({ inputDim: 2, outputDim: 3, weights: new Float32Array([1, 2, 3, 4, 5, 6]) }), output: { type: 'jsonb' } }),
      listener({ name: 'points_spread', model: 'spread', table: 'points', keys: ['xy'] }),
    );
    await db.waitUntilIdle({ listeners: ['points_spread'] });
    const { rows } = await database.sql.query(`SELECT id, output FROM superduper.out_points_spread ORDER BY id`);
    expect(rows.map((r) => r.output)).toEqual([
      [5, 7, 9],
      [2, 4, 6],
      [-4, -5, -6],
    ]);
  });

  it('a listener keyed by a pgvector column (an embedding) computes, and recomputes on UPDATE', async () => {
    await database.sql.query(`CREATE TABLE embedded_points (id int PRIMARY KEY, v vector(2))`);
    await database.sql.query(`INSERT INTO embedded_points VALUES (1, '[1,1]'), (2, '[2,0]')`);
    await db.apply(
      onnxModel({ name: 'plane_v', file: linearRegressionGraph({ coefficients: [2, 3], intercept: 1 }), output: { type: 'float' } }),
      listener({ name: 'embedded_plane', model: 'plane_v', table: 'embedded_points', keys: ['v'] }),
    );
    await db.waitUntilIdle({ listeners: ['embedded_plane'] });
    const outputs = async () => (await database.sql.query(`SELECT id, output FROM superduper.out_embedded_plane ORDER BY id`)).rows.map((r) => [r.id, r.output]);
    expect(await outputs()).toEqual([
      [1, 6],
      [2, 5],
    ]);
    await database.sql.query(`UPDATE embedded_points SET v = '[0,1]' WHERE id = 2`);
    await db.waitUntilIdle({ listeners: ['embedded_plane'] });
    expect(await outputs()).toEqual([
      [1, 6],
      [2, 4],
    ]);
  });
});
