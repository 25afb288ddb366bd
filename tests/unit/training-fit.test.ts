/**
 * fit() (src/training/fit.ts) on tiny datasets whose answers are known: an
 * exact linear rule, classes a line separates, XOR (a line cannot), three
 * clusters far apart; the splits' sizes; determinism by seed; the predictor
 * against TensorFlow.js's own forward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import MultivariateLinearRegression from 'ml-regression-multivariate-linear';
import { classProbabilities, encodeArtifact, predictor, type ClassifierArtifact, type KmeansArtifact, type LinearArtifact } from '../../src/training/artifact.js';
import { RowEncoder, type EncodedData } from '../../src/training/encode.js';
import { TrainingError } from '../../src/training/errors.js';
import { defaultEpochs, fit, mulberry32, shuffledRows } from '../../src/training/fit.js';
import { mae, r2, silhouette } from '../../src/training/metrics.js';
import type { TrainingSpec } from '../../src/training/types.js';

function encode(spec: TrainingSpec, rows: Record<string, unknown>[]): EncodedData {
  const encoder = new RowEncoder(spec);
  for (const row of rows) encoder.push(row);
  return encoder.finish();
}

function copy(data: EncodedData): EncodedData {
  return { ...data, x: data.x.slice(), ...(data.y ? { y: data.y.slice() } : {}) };
}

const linear: TrainingSpec = {
  trainer: 'spend',
  task: 'regression',
  algorithm: 'linear_regression',
  features: [{ name: 'a', kind: 'number' }, { name: 'b', kind: 'number' }],
  target: 'y',
  hyperparameters: {},
  seed: 11,
  validation: { holdout: 0.2 },
};
// b is not a multiple of a, so the two coefficients are determined.
const exactRows = Array.from({ length: 10 }, (_, i) => ({ a: i, b: (i * 7) % 5, y: 2 * i + 3 * ((i * 7) % 5) + 1 }));

const noisy = (seed: number) => {
  const next = mulberry32(seed);
  return Array.from({ length: 23 }, () => {
    const [a, b] = [next() * 10, next() * 10];
    return { a, b, y: 0.5 * a - 2 * b + 4 + (next() - 0.5) };
  });
};

describe('fit: linear regression', () => {
  it('gives the coefficients of an exact rule back, with R² 1 and no error', async () => {
    const result = await fit(linear, encode(linear, exactRows));
    const { model } = result.artifact as LinearArtifact;
    expect(model.coefficients[0]).toBeCloseTo(2, 9);
    expect(model.coefficients[1]).toBeCloseTo(3, 9);
    expect(model.intercept).toBeCloseTo(1, 9);
    expect(result.metrics.r2).toBeCloseTo(1, 12);
    expect(result.metrics.mae).toBeLessThan(1e-9);
    expect(Object.keys(result.metrics).sort()).toEqual(['mae', 'r2']);
    expect([result.trainedRows, result.heldOutRows]).toEqual([8, 2]);
  });

  it('fits a category feature one-hot beside the intercept (collinear columns)', async () => {
    const spec: TrainingSpec = { ...linear, features: [{ name: 'a', kind: 'number' }, { name: 'colour', kind: 'category', categories: ['red', 'blue'] }] };
    const rows = Array.from({ length: 12 }, (_, i) => ({ a: i, colour: i % 3 === 0 ? 'red' : 'blue', y: 2 * i + (i % 3 === 0 ? 5 : 7) }));
    const result = await fit(spec, encode(spec, rows));
    expect(result.metrics.r2).toBeCloseTo(1, 9);
    const predict = predictor(result.artifact);
    expect(predict([{ a: 100, colour: 'red' }, { a: 100, colour: 'blue' }]).map((y) => Number(y))).toEqual([expect.closeTo(205, 6), expect.closeTo(207, 6)]);
  });

  it('with folds, reports the mean of the folds\' metrics and fits the model on every row', async () => {
    const spec: TrainingSpec = { ...linear, validation: { folds: 5 } };
    const rows = noisy(3);
    const result = await fit(spec, encode(spec, rows));
    expect([result.trainedRows, result.heldOutRows]).toEqual([23, 23]);

    // The same folds, fitted with the library directly: fold f holds out
    // rows [floor(f·n/5), floor((f+1)·n/5)) of the seeded order.
    const order = Array.from(shuffledRows(23, spec.seed));
    const folds = Array.from({ length: 5 }, (_, f) => {
      const test = order.slice(Math.floor((f * 23) / 5), Math.floor(((f + 1) * 23) / 5));
      const train = order.filter((row) => !test.includes(row));
      const model = new MultivariateLinearRegression(train.map((i) => [rows[i]!.a, rows[i]!.b]), train.map((i) => [rows[i]!.y]), { statistics: false });
      const predicted = test.map((i) => model.predict([rows[i]!.a, rows[i]!.b])[0]!);
      const actual = test.map((i) => rows[i]!.y);
      return { r2: r2(actual, predicted), mae: mae(actual, predicted) };
    });
    expect(result.metrics.r2).toBeCloseTo(folds.reduce((s, f) => s + f.r2, 0) / 5, 9);
    expect(result.metrics.mae).toBeCloseTo(folds.reduce((s, f) => s + f.mae, 0) / 5, 9);

    const all = new MultivariateLinearRegression(rows.map((r) => [r.a, r.b]), rows.map((r) => [r.y]), { statistics: false });
    const { model } = result.artifact as LinearArtifact;
    expect(model.coefficients[0]).toBeCloseTo(all.weights[0]![0]!, 9);
    expect(model.coefficients[1]).toBeCloseTo(all.weights[1]![0]!, 9);
    expect(model.intercept).toBeCloseTo(all.weights[2]![0]!, 9);
  });
});

const churn: TrainingSpec = {
  trainer: 'churn',
  task: 'classification',
  algorithm: 'logistic_regression',
  features: [{ name: 'x', kind: 'number' }, { name: 'z', kind: 'number' }],
  target: 'label',
  // Small data needs more epochs than the defaults (chosen for 100,000 rows):
  // 100 epochs of batches of 16 are ~500 steps of Adam on 80 rows.
  hyperparameters: { epochs: 100, batch_size: 16, learning_rate: 0.05 },
  seed: 5,
  validation: { holdout: 0.25 },
};
const CLASSIFIERS = ['logistic_regression', 'neural_network'] as const;

/** n points uniform in [-1, 1]², labelled by `rule`. */
function points(n: number, seed: number, rule: (x: number, z: number) => string): { x: number; z: number; label: string }[] {
  const next = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const [x, z] = [next() * 2 - 1, next() * 2 - 1];
    return { x, z, label: rule(x, z) };
  });
}
/** Two classes a line separates, with a margin of 0.1 either side. */
const separable = points(200, 3, (x, z) => (x + z > 0 ? 'yes' : 'no')).filter(({ x, z }) => Math.abs(x + z) > 0.1 * Math.SQRT2);
/** XOR: the sign of x·z, away from the axes; no line does better than about half. */
const xor = points(400, 7, (x, z) => (x * z > 0 ? 'same' : 'opposite')).filter(({ x, z }) => Math.abs(x) > 0.1 && Math.abs(z) > 0.1);

/** Three groups around (0, 0), (5, 0) and (0, 5), each point within 0.5 of its centre. */
const threeClasses = (() => {
  const centres = { a: [0, 0], b: [5, 0], c: [0, 5] } as const;
  const next = mulberry32(4);
  return Array.from({ length: 90 }, (_, i) => {
    const label = (['a', 'b', 'c'] as const)[i % 3]!;
    return { x: centres[label][0] + next() - 0.5, z: centres[label][1] + next() - 0.5, label };
  });
})();

describe.each(CLASSIFIERS)('fit: %s', (algorithm) => {
  const spec: TrainingSpec = { ...churn, algorithm };

  it('separates two classes a line separates: accuracy, F1 and ROC AUC 1 on held-out rows', async () => {
    const result = await fit(spec, encode(spec, separable));
    expect(result.metrics).toEqual({ accuracy: 1, f1: 1, roc_auc: 1 });
    const artifact = result.artifact as ClassifierArtifact;
    expect(artifact.algorithm).toBe(algorithm);
    expect(artifact.classes).toEqual(['no', 'yes']);
    // Two classes: the last layer is one sigmoid unit, P("yes").
    const last = artifact.model.layers.at(-1)!;
    expect([last.activation, last.weights.length, last.biases.length]).toEqual(['sigmoid', 1, 1]);
    expect(artifact.model.layers.map((layer) => layer.activation)).toEqual(algorithm === 'neural_network' ? ['relu', 'sigmoid'] : ['sigmoid']);
    expect(predictor(artifact)([{ x: 0.8, z: 0.5 }, { x: -0.5, z: -0.1 }])).toEqual(['yes', 'no']);
    expect(result.fitMs).toBeGreaterThan(0);
  });

  it('separates three classes with a softmax unit each, with accuracy, F1 and the mean one-vs-rest ROC AUC 1', async () => {
    const result = await fit(spec, encode(spec, threeClasses));
    expect(result.metrics).toEqual({ accuracy: 1, f1: 1, roc_auc: 1 });
    const artifact = result.artifact as ClassifierArtifact;
    const last = artifact.model.layers.at(-1)!;
    expect([last.activation, last.weights.length]).toEqual(['softmax', 3]);
    const probabilities = classProbabilities(artifact, Float64Array.of(5, 0));
    expect(probabilities.reduce((sum, p) => sum + p, 0)).toBeCloseTo(1, 12);
    expect(predictor(artifact)([{ x: 0, z: 0 }, { x: 5, z: 0 }, { x: 0, z: 5 }])).toEqual(['a', 'b', 'c']);
  });

  it.each([['a sigmoid unit', xor], ['softmax', threeClasses]] as const)('predicts what TensorFlow.js\'s own model.predict gives from the same layers, within 1e-5 (%s)', async (_, rows) => {
    const artifact = (await fit(spec, encode(spec, [...rows]))).artifact as ClassifierArtifact;
    const { mean, std } = artifact.standardize;
    // The artifact's layers back into a tfjs model: a row of weights per
    // unit is a column of tfjs's kernel (inputs × units).
    const model = tfl.sequential();
    artifact.model.layers.forEach((layer, l) => {
      const inputs = layer.weights[0]!.length;
      const dense = tfl.layers.dense({ units: layer.weights.length, activation: layer.activation, ...(l === 0 ? { inputShape: [inputs] } : {}) });
      model.add(dense);
      tf.tidy(() => dense.setWeights([tf.transpose(tf.tensor2d(layer.weights, [layer.weights.length, inputs])), tf.tensor1d(layer.biases)]));
    });
    const some = rows.slice(0, 60);
    const standardized = some.map((row) => [(row.x - mean[0]!) / std[0]!, (row.z - mean[1]!) / std[1]!]);
    const theirs = tf.tidy(() => (model.predict(tf.tensor2d(standardized)) as tf.Tensor).arraySync() as number[][]);
    model.dispose();
    some.forEach((row, i) => {
      const ours = Array.from(classProbabilities(artifact, Float64Array.of(row.x, row.z)));
      // One sigmoid unit is P(classes[1]); softmax gives every class's.
      const expected = theirs[i]!.length === 1 ? [1 - theirs[i]![0]!, theirs[i]![0]!] : theirs[i]!;
      expect(ours).toHaveLength(artifact.classes.length);
      ours.forEach((p, c) => expect(Math.abs(p - expected[c]!)).toBeLessThan(1e-5));
    });
  });

  it('leaves no tensor behind, across folds and the final fit', async () => {
    const before = tf.memory().numTensors;
    await fit({ ...spec, hyperparameters: { epochs: 5 }, validation: { folds: 3 } }, encode(spec, separable));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('never predicts a class the training part lacked (it is not among the artifact\'s classes)', async () => {
    const rows = [...separable.slice(0, 40), { x: 0, z: 0, label: 'rare' }];
    // A seed whose held-out half has the one "rare" row (row 40).
    const seed = Array.from({ length: 100 }, (_, s) => s).find((s) => shuffledRows(41, s).subarray(0, Math.round(41 * 0.5)).includes(40))!;
    const result = await fit({ ...spec, seed, validation: { holdout: 0.5 } }, encode(spec, rows));
    const artifact = result.artifact as ClassifierArtifact;
    expect(artifact.classes).toEqual(['no', 'yes']);
    expect(predictor(artifact)([{ x: 0, z: 0 }, { x: -1, z: -1 }, { x: 1, z: 1 }])).not.toContain('rare');
    // Measured against the data's three classes: "rare" held out, never predicted.
    expect(result.metrics.accuracy).toBeLessThan(1);
  });
});

describe('fit: neural network against logistic regression', () => {
  it('learns XOR, which logistic regression cannot', async () => {
    const network = await fit({ ...churn, algorithm: 'neural_network' }, encode(churn, xor));
    const logistic = await fit(churn, encode(churn, xor));
    expect(network.metrics.accuracy).toBeGreaterThan(0.95);
    expect(network.metrics.roc_auc).toBeGreaterThan(0.98);
    expect(logistic.metrics.accuracy).toBeLessThan(0.7);
    expect(logistic.metrics.roc_auc).toBeLessThan(0.7);
    expect((network.artifact as ClassifierArtifact).model.layers[0]!.weights).toHaveLength(16); // hidden_units' default
  });
});

describe('fit: default epochs', () => {
  it('are 20, or as many as make 500 optimizer steps on a table too small for 20 to', () => {
    expect(defaultEpochs(100_000, 1024)).toBe(20); // 98 batches a pass
    expect(defaultEpochs(10_000, 1024)).toBe(50); // 10 batches
    expect(defaultEpochs(240, 1024)).toBe(500); // one batch: a step a pass
    expect(defaultEpochs(240, 16)).toBe(34); // 15 batches
  });
});

describe('fit: classification refusals', () => {
  it('refuses a training part of one class, and folds or a holdout that leave no row', async () => {
    const spec: TrainingSpec = { ...churn, features: [{ name: 'x', kind: 'number' }], validation: { holdout: 0.5 } };
    await expect(fit(spec, encode(spec, [{ x: 1, label: 'a' }, { x: 2, label: 'b' }]))).rejects.toThrow(
      'trainer "churn": the training part of the held-out split (1 rows) has one class only; a classifier needs two or more: use more rows, a smaller holdout or fewer folds',
    );
    const few = [{ x: 1, label: 'a' }, { x: 2, label: 'b' }, { x: 3, label: 'a' }];
    await expect(fit({ ...spec, validation: { holdout: 0.1 } }, encode(spec, few))).rejects.toThrow(TrainingError);
    await expect(fit({ ...spec, validation: { holdout: 0.1 } }, encode(spec, few))).rejects.toThrow('holding out 0.1 of 3 rows leaves no row to measure on');
    await expect(fit({ ...spec, validation: { folds: 4 } }, encode(spec, few))).rejects.toThrow('4 folds need at least 4 rows, and the query returned 3');
  });
});

describe('fit: k-means', () => {
  const spec: TrainingSpec = {
    trainer: 'segments',
    task: 'clustering',
    algorithm: 'kmeans',
    features: [{ name: 'u', kind: 'number' }, { name: 'v', kind: 'number' }],
    hyperparameters: { k: 2 },
    seed: 2,
    validation: { holdout: 0.25 },
  };
  const next = mulberry32(8);
  // Two tight groups, (0, 0) and (10, 10), each point within 0.5 of its centre.
  const rows = Array.from({ length: 40 }, (_, i) => ({ u: (i < 20 ? 0 : 10) + next() - 0.5, v: (i < 20 ? 0 : 10) + next() - 0.5 }));

  it('finds two groups far apart: each point with its own group, silhouette near 1', async () => {
    const result = await fit(spec, encode(spec, rows));
    const predicted = predictor(result.artifact)(rows) as number[];
    expect(new Set(predicted.slice(0, 20)).size).toBe(1);
    expect(new Set(predicted.slice(20)).size).toBe(1);
    expect(predicted[0]).not.toBe(predicted[20]);
    // Standardized, the groups are about 2.8 apart and about 0.1 wide.
    expect(result.metrics.silhouette).toBeGreaterThan(0.9);
  });

  it('measures silhouette and inertia on the held-out rows, as computed from the artifact', async () => {
    const result = await fit(spec, encode(spec, rows));
    const artifact = result.artifact as KmeansArtifact;
    const held = Array.from(shuffledRows(40, spec.seed).subarray(0, 10));
    const { mean, std } = artifact.standardize;
    const points = held.map((i) => [(rows[i]!.u - mean[0]!) / std[0]!, (rows[i]!.v - mean[1]!) / std[1]!]);
    const distances = points.map((p) => artifact.model.centroids.map((c) => (p[0]! - c[0]!) ** 2 + (p[1]! - c[1]!) ** 2));
    const clusters = distances.map((d) => d.indexOf(Math.min(...d)));
    expect(result.metrics.inertia).toBeCloseTo(distances.reduce((s, d) => s + Math.min(...d), 0), 12);
    expect(result.metrics.silhouette).toBeCloseTo(silhouette(points, clusters), 12);
    expect([result.trainedRows, result.heldOutRows]).toEqual([30, 10]);
  });

  it('refuses a k above the training rows', async () => {
    await expect(fit({ ...spec, hyperparameters: { k: 31 } }, encode(spec, rows))).rejects.toThrow('the training part of the held-out split has 30 rows, fewer than k = 31; lower "k" or use more rows');
  });
});

describe('fit: determinism', () => {
  const rows = points(60, 1, (x, z) => (x + z + x * z > 0.2 ? 'yes' : 'no'));
  const logistic: TrainingSpec = { ...churn, hyperparameters: { epochs: 5, batch_size: 8 }, validation: { folds: 2 } };
  const network: TrainingSpec = { ...logistic, algorithm: 'neural_network', hyperparameters: { epochs: 5, batch_size: 8, hidden_units: 4 } };
  const clustering: TrainingSpec = { trainer: 'c', task: 'clustering', algorithm: 'kmeans', features: [{ name: 'x', kind: 'number' }, { name: 'z', kind: 'number' }], hyperparameters: { k: 3 }, seed: 5, validation: { folds: 3 } };
  const bytes = (result: { artifact: Parameters<typeof encodeArtifact>[0] }) => Buffer.from(encodeArtifact(result.artifact));

  it('gives byte-identical artifacts for the same spec, data and seed', async () => {
    for (const [spec, data] of [[logistic, rows], [network, rows], [linear, noisy(2)], [clustering, rows.map(({ x, z }) => ({ x, z }))]] as const) {
      const encoded = encode(spec, [...data]);
      const first = await fit(spec, copy(encoded));
      const second = await fit(spec, copy(encoded));
      expect(bytes(second).equals(bytes(first))).toBe(true);
      expect(second.metrics).toEqual(first.metrics);
    }
  });

  it('splits and initializes differently with a different seed', async () => {
    expect(Array.from(shuffledRows(50, 1))).not.toEqual(Array.from(shuffledRows(50, 2)));
    expect(Array.from(shuffledRows(50, 1)).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    for (const spec of [logistic, network]) {
      const data = encode(spec, rows);
      const one = await fit({ ...spec, seed: 1 }, copy(data));
      const two = await fit({ ...spec, seed: 2 }, copy(data));
      expect(bytes(one).equals(bytes(two))).toBe(false);
    }
  });
});
