/** The training rows' encoder (src/training/encode.ts): values as node-postgres gives them, and the errors a trainer's owner reads. */
import { describe, expect, it } from 'vitest';
import { RowEncoder, estimateBytes, layoutWidth } from '../../src/training/encode.js';
import { TrainingError } from '../../src/training/errors.js';
import type { TrainingSpec } from '../../src/training/types.js';

const churn: TrainingSpec = {
  trainer: 'churn',
  task: 'classification',
  algorithm: 'logistic_regression',
  features: [{ name: 'age', kind: 'number' }],
  target: 'churned',
  hyperparameters: {},
  seed: 1,
  validation: { holdout: 0.2 },
};

function encode(spec: TrainingSpec, rows: Record<string, unknown>[], options?: { expectedRows?: number }) {
  const encoder = new RowEncoder(spec, options);
  for (const row of rows) encoder.push(row);
  return encoder.finish();
}

function thrown(work: () => unknown): TrainingError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(TrainingError);
    return error as TrainingError;
  }
  throw new Error('expected a TrainingError');
}

describe('RowEncoder', () => {
  it('encodes numbers (and numeric strings), booleans, one-hot categories and vectors, row-major', () => {
    const spec: TrainingSpec = {
      ...churn,
      features: [
        { name: 'age', kind: 'number' },
        { name: 'active', kind: 'boolean' },
        { name: 'plan', kind: 'category', categories: ['free', 'pro', 'team'] },
        { name: 'embedding', kind: 'vector', dim: 3 },
      ],
    };
    expect(layoutWidth(spec.features)).toBe(1 + 1 + 3 + 3);
    const data = encode(spec, [
      { age: 30, active: true, plan: 'pro', embedding: '[1,2.5,-3]', churned: false },
      // numeric and bigint columns arrive as strings; a plan not in the list is all zeros.
      { age: '41.5', active: false, plan: 'enterprise', embedding: [0.5, 0, 1e-3], churned: true },
    ]);
    expect(data.rows).toBe(2);
    expect(data.width).toBe(8);
    expect(Array.from(data.x)).toEqual([30, 1, 0, 1, 0, 1, 2.5, -3, 41.5, 0, 0, 0, 0, 0.5, 0, 1e-3]);
    expect(data.classes).toEqual([false, true]);
    expect(Array.from(data.y!)).toEqual([0, 1]);
  });

  it('sorts the classes (numbers numerically, text by its characters) and gives each row its class index', () => {
    const numbers = encode(churn, [{ age: 1, churned: 10 }, { age: 2, churned: 9 }, { age: 3, churned: 10 }, { age: 4, churned: -1 }]);
    expect(numbers.classes).toEqual([-1, 9, 10]);
    expect(Array.from(numbers.y!)).toEqual([2, 1, 2, 0]);
    const text = encode(churn, [{ age: 1, churned: 'b' }, { age: 2, churned: 'B' }, { age: 3, churned: 'a' }]);
    expect(text.classes).toEqual(['B', 'a', 'b']);
    expect(Array.from(text.y!)).toEqual([2, 0, 1]);
  });

  it('keeps a regression target as numbers, from numbers or numeric strings', () => {
    const spec: TrainingSpec = { ...churn, task: 'regression', algorithm: 'linear_regression', target: 'spend' };
    const data = encode(spec, [{ age: 1, spend: 2.5 }, { age: 2, spend: '-7' }]);
    expect(Array.from(data.y!)).toEqual([2.5, -7]);
    expect(data.classes).toBeUndefined();
  });

  it('grows past its first capacity and returns exactly rows × width numbers', () => {
    const spec: TrainingSpec = { trainer: 'points', task: 'clustering', algorithm: 'kmeans', features: [{ name: 'a', kind: 'number' }, { name: 'b', kind: 'number' }], hyperparameters: { k: 2 }, seed: 1, validation: { holdout: 0.2 } };
    const rows = Array.from({ length: 37 }, (_, i) => ({ a: i, b: -i }));
    const data = encode(spec, rows, { expectedRows: 4 });
    expect(data.x.length).toBe(37 * 2);
    expect(data.x[36 * 2]).toBe(36);
    expect(data.x[36 * 2 + 1]).toBe(-36);
    expect(data.y).toBeUndefined();
  });

  it('names the column and the fix for a NULL target', () => {
    const error = thrown(() => encode(churn, [{ age: 1, churned: true }, { age: 2, churned: null }]));
    expect(error.message).toBe('trainer "churn": target "churned" is NULL in row 2 of the training query; filter such rows out ("filter": "churned IS NOT NULL") or fill them (COALESCE in the query)');
  });

  it('names the column for a NULL feature, quoting names SQL must quote', () => {
    const spec: TrainingSpec = { ...churn, features: [{ name: 'Age', kind: 'number' }] };
    const error = thrown(() => encode(spec, [{ churned: true }]));
    expect(error.message).toContain('feature "Age" is NULL in row 1');
    expect(error.message).toContain('("filter": "\\"Age\\" IS NOT NULL")');
  });

  it('refuses a non-numeric string for a number feature, and says how to cast it', () => {
    const error = thrown(() => encode(churn, [{ age: 'forty', churned: true }]));
    expect(error.message).toBe('trainer "churn": feature "age" is "forty", not a number in row 1 of the training query; cast it in the query (age::float8) or make the feature a category');
  });

  it('refuses non-finite numbers and vectors of the wrong length', () => {
    expect(thrown(() => encode(churn, [{ age: 'NaN', churned: true }])).message).toContain('feature "age" is "NaN", not a finite number');
    expect(thrown(() => encode(churn, [{ age: Infinity, churned: true }])).message).toContain('feature "age" is Infinity, not a finite number');
    const spec: TrainingSpec = { ...churn, features: [{ name: 'embedding', kind: 'vector', dim: 3 }] };
    expect(thrown(() => encode(spec, [{ embedding: '[1,2]', churned: true }])).message).toContain('feature "embedding" has 2 numbers, but the feature\'s "dim" is 3 in row 1');
    expect(thrown(() => encode(spec, [{ embedding: '[1,x,2]', churned: true }])).message).toContain('has NaN at position 2');
  });

  it('refuses an empty result and a single class', () => {
    expect(thrown(() => encode(churn, [])).message).toBe('trainer "churn": the training query returned no rows; check its source table and "filter", then train again');
    expect(thrown(() => encode(churn, [{ age: 1, churned: 'yes' }, { age: 2, churned: 'yes' }])).message).toBe(
      'trainer "churn": target "churned" has one class only (value "yes"); a classifier needs two or more: widen the training query or check the target column',
    );
  });

  it('estimates more bytes for more rows and wider rows, and the most of all algorithms when none is named', () => {
    expect(estimateBytes(2000, 8, 'linear_regression')).toBeGreaterThan(estimateBytes(1000, 8, 'linear_regression'));
    expect(estimateBytes(1000, 16, 'kmeans')).toBeGreaterThan(estimateBytes(1000, 8, 'kmeans'));
    const each = (['logistic_regression', 'neural_network', 'linear_regression', 'kmeans'] as const).map((a) => estimateBytes(1000, 8, a));
    expect(estimateBytes(1000, 8)).toBe(Math.max(...each));
  });

  it('counts TensorFlow.js\'s own memory for the classifiers, before any row, and less per row than ml.js needs', () => {
    const mb = 2 ** 20;
    expect(estimateBytes(1, 8, 'logistic_regression')).toBeGreaterThanOrEqual(160 * mb);
    expect(estimateBytes(1, 8, 'neural_network')).toBe(estimateBytes(1, 8, 'logistic_regression'));
    // 1,000,000 × 8: 455 MB measured at the peak with {"folds": 2} (encode.ts), where ml.js's linear regression took 1.55 GB.
    expect(estimateBytes(1_000_000, 8, 'logistic_regression')).toBeGreaterThan(455 * mb);
    expect(estimateBytes(1_000_000, 8, 'logistic_regression')).toBeLessThan(estimateBytes(1_000_000, 8, 'linear_regression'));
  });
});
