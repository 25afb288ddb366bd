/** Training metrics (src/training/metrics.ts) against values worked out by hand. */
import { describe, expect, it } from 'vitest';
import { accuracy, macroF1, mae, r2, rocAuc, silhouette } from '../../src/training/metrics.js';

describe('training metrics', () => {
  it('accuracy and macro F1 of a small classification', () => {
    const labels = ['a', 'a', 'a', 'b', 'b', 'c'];
    const predicted = ['a', 'a', 'b', 'b', 'c', 'c'];
    expect(accuracy(labels, predicted)).toBeCloseTo(4 / 6, 12);
    // a: tp 2 fp 0 fn 1 -> 4/5; b: tp 1 fp 1 fn 1 -> 2/4; c: tp 1 fp 1 fn 0 -> 2/3.
    expect(macroF1(labels, predicted)).toBeCloseTo((0.8 + 0.5 + 2 / 3) / 3, 12);
  });

  it('ROC AUC as the share of positive-negative pairs ranked right, ties half', () => {
    // Positives score 0.9, 0.4; negatives 0.6, 0.4, 0.1: pairs (0.9>all) 3, (0.4 vs 0.6) 0, (0.4 vs 0.4) 0.5, (0.4 vs 0.1) 1 -> 4.5 of 6.
    expect(rocAuc([true, false, true, false, false], [0.9, 0.6, 0.4, 0.4, 0.1])).toBeCloseTo(4.5 / 6, 12);
    expect(rocAuc([true, true], [0.1, 0.2])).toBeUndefined();
  });

  it('R² and MAE of a small regression', () => {
    const actual = [1, 2, 3, 4];
    const predicted = [1.5, 2, 2.5, 4];
    // mean 2.5, total 5, residual 0.25 + 0 + 0.25 + 0 = 0.5 -> 1 - 0.1.
    expect(r2(actual, predicted)).toBeCloseTo(0.9, 12);
    expect(mae(actual, predicted)).toBeCloseTo(1 / 4, 12);
  });

  it('the silhouette of two clusters on a line', () => {
    // Points 0, 1 (cluster 0) and 10, 11 (cluster 1).
    // Point 0: a = 1, b = (10 + 11) / 2 = 10.5 -> 9.5 / 10.5; point 1: a = 1, b = 9.5 -> 8.5 / 9.5; symmetric for the others.
    const s = silhouette([[0], [1], [10], [11]], [0, 0, 1, 1]);
    expect(s).toBeCloseTo((2 * (9.5 / 10.5) + 2 * (8.5 / 9.5)) / 4, 12);
    expect(silhouette([[0], [1]], [0, 0])).toBe(0);
  });

  it('refuses values of different lengths, or none', () => {
    expect(() => accuracy([1], [1, 2])).toThrow('metrics: 1 values against 2');
    expect(() => mae([], [])).toThrow('metrics: no values');
  });
});
