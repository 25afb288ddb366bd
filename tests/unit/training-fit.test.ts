/**
 * fit() (src/training/fit.ts) on tiny datasets whose answers are known: an
 * exact linear rule, a one-step logistic regression worked out by hand, two
 * clusters far apart; the splits' sizes; determinism by seed.
 */
import { describe, expect, it } from 'vitest';
// @ts-ignore -- ml-logistic-regression ships no types; the test uses the part fit.ts declares.
import LogisticRegressionLibrary from 'ml-logistic-regression';
import { Matrix } from 'ml-matrix';
import MultivariateLinearRegression from 'ml-regression-multivariate-linear';
import { classProbabilities, encodeArtifact, predictor, type KmeansArtifact, type LinearArtifact, type LogisticArtifact } from '../../src/training/artifact.js';
import { RowEncoder, type EncodedData } from '../../src/training/encode.js';
import { TrainingError } from '../../src/training/errors.js';
import { fit, mulberry32, shuffledRows } from '../../src/training/fit.js';
import { mae, r2, silhouette } from '../../src/training/metrics.js';
import type { TrainingSpec } from '../../src/training/types.js';

const LogisticRegression = LogisticRegressionLibrary as unknown as new (options: { numSteps: number; learningRate: number }) => {
  train(x: Matrix, y: Matrix): void;
  classifiers: { weights: Matrix }[];
};

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
  it('gives the coefficients of an exact rule back, with R² 1 and no error', () => {
    const result = fit(linear, encode(linear, exactRows));
    const { model } = result.artifact as LinearArtifact;
    expect(model.coefficients[0]).toBeCloseTo(2, 9);
    expect(model.coefficients[1]).toBeCloseTo(3, 9);
    expect(model.intercept).toBeCloseTo(1, 9);
    expect(result.metrics.r2).toBeCloseTo(1, 12);
    expect(result.metrics.mae).toBeLessThan(1e-9);
    expect(Object.keys(result.metrics).sort()).toEqual(['mae', 'r2']);
    expect([result.trainedRows, result.heldOutRows]).toEqual([8, 2]);
  });

  it('fits a category feature one-hot beside the intercept (collinear columns)', () => {
    const spec: TrainingSpec = { ...linear, features: [{ name: 'a', kind: 'number' }, { name: 'colour', kind: 'category', categories: ['red', 'blue'] }] };
    const rows = Array.from({ length: 12 }, (_, i) => ({ a: i, colour: i % 3 === 0 ? 'red' : 'blue', y: 2 * i + (i % 3 === 0 ? 5 : 7) }));
    const result = fit(spec, encode(spec, rows));
    expect(result.metrics.r2).toBeCloseTo(1, 9);
    const predict = predictor(result.artifact);
    expect(predict([{ a: 100, colour: 'red' }, { a: 100, colour: 'blue' }]).map((y) => Number(y))).toEqual([expect.closeTo(205, 6), expect.closeTo(207, 6)]);
  });

  it('with folds, reports the mean of the folds\' metrics and fits the model on every row', () => {
    const spec: TrainingSpec = { ...linear, validation: { folds: 5 } };
    const rows = noisy(3);
    const result = fit(spec, encode(spec, rows));
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
  features: [{ name: 'x', kind: 'number' }],
  target: 'label',
  hyperparameters: {},
  seed: 5,
  validation: { folds: 2 },
};

describe('fit: logistic regression', () => {
  it('takes one gradient step as worked out by hand (rate divided by the rows, intercept column, one-vs-rest signs)', () => {
    // 10 rows x = -1 ("no") and 10 rows x = +1 ("yes"): standardized, x stays
    // ±1. From w = 0 every P is 1/2; the gradient of the summed log
    // likelihood is [Σ x(y - 1/2), Σ (y - 1/2)] = [10, 0], and the rate is
    // 0.5 / 20 rows: w("yes") = [0.25, 0], and w("no") its negation.
    const spec: TrainingSpec = { ...churn, hyperparameters: { steps: 1, learning_rate: 0.5 } };
    const rows = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? { x: -1, label: 'no' } : { x: 1, label: 'yes' }));
    const artifact = fit(spec, encode(spec, rows)).artifact as LogisticArtifact;
    expect(artifact.classes).toEqual(['no', 'yes']);
    expect(artifact.standardize).toEqual({ mean: [0], std: [1] });
    const [no, yes] = artifact.model.weights;
    expect(yes![0]).toBeCloseTo(0.25, 12);
    expect(yes![1]).toBeCloseTo(0, 12);
    expect(no![0]).toBeCloseTo(-0.25, 12);
    const probabilities = classProbabilities(artifact, Float64Array.of(1));
    expect(probabilities[1]).toBeCloseTo(1 / (1 + Math.exp(-0.25)), 12);
    expect(probabilities[0]! + probabilities[1]!).toBeCloseTo(1, 12);
    expect(predictor(artifact)([-3, 0.5, 2])).toEqual(['no', 'yes', 'yes']);
  });

  it('for two classes, gives the weights of ml-logistic-regression\'s own one-vs-rest fit', () => {
    const spec: TrainingSpec = { ...churn, features: [{ name: 'x', kind: 'number' }, { name: 'z', kind: 'number' }], hyperparameters: { steps: 50, learning_rate: 0.5 } };
    const next = mulberry32(9);
    const rows = Array.from({ length: 40 }, () => {
      const [x, z] = [next() * 4 - 2, next() * 4 - 2];
      return { x, z, label: x - 0.5 * z + (next() - 0.5) > 0 ? 1 : 0 };
    });
    const artifact = fit(spec, encode(spec, rows)).artifact as LogisticArtifact;
    // The final model (folds) is fitted on every row in order, as here.
    const { mean, std } = artifact.standardize;
    const x = new Matrix(rows.map((r) => [(r.x - mean[0]!) / std[0]!, (r.z - mean[1]!) / std[1]!, 1]));
    const library = new LogisticRegression({ numSteps: 50, learningRate: 0.5 / rows.length });
    library.train(x, Matrix.columnVector(rows.map((r) => r.label)));
    // Classifier 0 learnt class 0 as 0 and class 1 as 1: it is P(class 1).
    expect(artifact.model.weights[1]).toEqual(library.classifiers[0]!.weights.to1DArray());
    // Classifier 1 is its mirror image: P(class 1) = 1 - sigmoid(w1·x).
    library.classifiers[1]!.weights.to1DArray().forEach((w, j) => expect(artifact.model.weights[1]![j]).toBeCloseTo(-w, 9));
  });

  it('separates three classes, with accuracy, F1 and the mean one-vs-rest ROC AUC all 1', () => {
    const spec: TrainingSpec = { ...churn, features: [{ name: 'x', kind: 'number' }, { name: 'z', kind: 'number' }], validation: { holdout: 0.25 } };
    const centres = { a: [0, 0], b: [5, 0], c: [0, 5] } as const;
    const next = mulberry32(4);
    const rows = Array.from({ length: 60 }, (_, i) => {
      const label = (['a', 'b', 'c'] as const)[i % 3]!;
      return { x: centres[label][0] + next() - 0.5, z: centres[label][1] + next() - 0.5, label };
    });
    const result = fit(spec, encode(spec, rows));
    expect(result.metrics).toEqual({ accuracy: 1, f1: 1, roc_auc: 1 });
    expect([result.trainedRows, result.heldOutRows]).toEqual([45, 15]);
    expect(predictor(result.artifact)([{ x: 0, z: 0 }, { x: 5, z: 0 }, { x: 0, z: 5 }])).toEqual(['a', 'b', 'c']);
  });

  it('never predicts a class the training part lacked (its weights are null)', () => {
    const spec: TrainingSpec = { ...churn, validation: { holdout: 0.5 } };
    const rows = [...Array.from({ length: 20 }, (_, i) => ({ x: i < 10 ? -1 - i : 1 + i, label: i < 10 ? 'a' : 'b' })), { x: 0, label: 'c' }];
    // A seed whose held-out half has the one "c" row (row 20).
    const seed = Array.from({ length: 100 }, (_, s) => s).find((s) => shuffledRows(21, s).subarray(0, Math.round(21 * 0.5)).includes(20))!;
    const result = fit({ ...spec, seed }, encode(spec, rows));
    const artifact = result.artifact as LogisticArtifact;
    expect(artifact.classes).toEqual(['a', 'b', 'c']);
    expect(artifact.model.weights[2]).toBeNull();
    expect(predictor(artifact)([0, -5, 5])).not.toContain('c');
  });

  it('refuses a training part of one class, and folds or a holdout that leave no row', () => {
    const spec: TrainingSpec = { ...churn, validation: { holdout: 0.5 } };
    expect(() => fit(spec, encode(spec, [{ x: 1, label: 'a' }, { x: 2, label: 'b' }]))).toThrow(
      'trainer "churn": the training part of the held-out split (1 rows) has one class only; a classifier needs two or more: use more rows, a smaller holdout or fewer folds',
    );
    const few = [{ x: 1, label: 'a' }, { x: 2, label: 'b' }, { x: 3, label: 'a' }];
    expect(() => fit({ ...spec, validation: { holdout: 0.1 } }, encode(spec, few))).toThrow(TrainingError);
    expect(() => fit({ ...spec, validation: { holdout: 0.1 } }, encode(spec, few))).toThrow('holding out 0.1 of 3 rows leaves no row to measure on');
    expect(() => fit({ ...spec, validation: { folds: 4 } }, encode(spec, few))).toThrow('4 folds need at least 4 rows, and the query returned 3');
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

  it('finds two groups far apart: each point with its own group, silhouette near 1', () => {
    const result = fit(spec, encode(spec, rows));
    const predicted = predictor(result.artifact)(rows) as number[];
    expect(new Set(predicted.slice(0, 20)).size).toBe(1);
    expect(new Set(predicted.slice(20)).size).toBe(1);
    expect(predicted[0]).not.toBe(predicted[20]);
    // Standardized, the groups are about 2.8 apart and about 0.1 wide.
    expect(result.metrics.silhouette).toBeGreaterThan(0.9);
  });

  it('measures silhouette and inertia on the held-out rows, as computed from the artifact', () => {
    const result = fit(spec, encode(spec, rows));
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

  it('refuses a k above the training rows', () => {
    expect(() => fit({ ...spec, hyperparameters: { k: 31 } }, encode(spec, rows))).toThrow('the training part of the held-out split has 30 rows, fewer than k = 31; lower "k" or use more rows');
  });
});

describe('fit: determinism', () => {
  const logistic: TrainingSpec = { ...churn, features: [{ name: 'x', kind: 'number' }, { name: 'z', kind: 'number' }], hyperparameters: { steps: 30 }, validation: { holdout: 0.3 } };
  const next = mulberry32(1);
  const rows = Array.from({ length: 50 }, () => {
    const [x, z] = [next(), next()];
    return { x, z, label: x + z + next() * 0.5 > 1.2 ? 'yes' : 'no' };
  });
  const clustering: TrainingSpec = { trainer: 'c', task: 'clustering', algorithm: 'kmeans', features: [{ name: 'x', kind: 'number' }, { name: 'z', kind: 'number' }], hyperparameters: { k: 3 }, seed: 5, validation: { folds: 3 } };

  it('gives byte-identical artifacts for the same spec, data and seed', () => {
    for (const [spec, data] of [[logistic, rows], [linear, noisy(2)], [clustering, rows.map(({ x, z }) => ({ x, z }))]] as const) {
      const data1 = encode(spec, [...data]);
      const first = fit(spec, copy(data1));
      const second = fit(spec, copy(data1));
      expect(Buffer.from(encodeArtifact(second.artifact)).equals(Buffer.from(encodeArtifact(first.artifact)))).toBe(true);
      expect(second.metrics).toEqual(first.metrics);
    }
  });

  it('splits differently with a different seed', () => {
    expect(Array.from(shuffledRows(50, 1))).not.toEqual(Array.from(shuffledRows(50, 2)));
    expect(Array.from(shuffledRows(50, 1)).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const data = encode(logistic, rows);
    const one = fit({ ...logistic, seed: 1 }, copy(data));
    const two = fit({ ...logistic, seed: 2 }, copy(data));
    expect(Buffer.from(encodeArtifact(one.artifact)).equals(Buffer.from(encodeArtifact(two.artifact)))).toBe(false);
  });
});
