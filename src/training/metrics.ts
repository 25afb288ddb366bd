/**
 * The metrics a training run reports (issue 16): accuracy, macro F1 and ROC AUC
 * for classification; R² and MAE for regression; the silhouette for
 * clustering. Computed here, in plain loops, so that each is exactly its
 * textbook definition (tests/unit/training-metrics.test.ts checks them
 * against values worked out by hand).
 */

/** The share of predictions equal to their label. */
export function accuracy(labels: readonly unknown[], predicted: readonly unknown[]): number {
  sameLength(labels, predicted);
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === predicted[i]) right++;
  return right / labels.length;
}

/** F1 of each class (2·precision·recall / (precision + recall), 0 when both are 0), averaged over the classes of the labels. */
export function macroF1(labels: readonly unknown[], predicted: readonly unknown[]): number {
  sameLength(labels, predicted);
  const classes = [...new Set(labels)];
  let sum = 0;
  for (const c of classes) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < labels.length; i++) {
      if (predicted[i] === c && labels[i] === c) tp++;
      else if (predicted[i] === c) fp++;
      else if (labels[i] === c) fn++;
    }
    sum += tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  }
  return sum / classes.length;
}

/**
 * ROC AUC of scores for the positive class: the probability that a random
 * positive scores above a random negative (ties count half), the
 * Mann-Whitney form. Undefined without both classes.
 */
export function rocAuc(positive: readonly boolean[], scores: readonly number[]): number | undefined {
  sameLength(positive, scores);
  const order = scores.map((score, i) => ({ score, positive: positive[i]! })).sort((a, b) => a.score - b.score);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j < order.length && order[j]!.score === order[i]!.score) j++;
    const rank = (i + 1 + j) / 2; // tied scores share their mean rank (1-based)
    for (let k = i; k < j; k++) if (order[k]!.positive) {
      positives++;
      rankSum += rank;
    }
    i = j;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return undefined;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** 1 − (residual sum of squares) / (total sum of squares around the mean). */
export function r2(actual: readonly number[], predicted: readonly number[]): number {
  sameLength(actual, predicted);
  const mean = actual.reduce((s, v) => s + v, 0) / actual.length;
  let residual = 0;
  let total = 0;
  for (let i = 0; i < actual.length; i++) {
    residual += (actual[i]! - predicted[i]!) ** 2;
    total += (actual[i]! - mean) ** 2;
  }
  return total === 0 ? (residual === 0 ? 1 : 0) : 1 - residual / total;
}

/** The mean absolute error. */
export function mae(actual: readonly number[], predicted: readonly number[]): number {
  sameLength(actual, predicted);
  let sum = 0;
  for (let i = 0; i < actual.length; i++) sum += Math.abs(actual[i]! - predicted[i]!);
  return sum / actual.length;
}

/**
 * The mean silhouette over all points, by Euclidean distance: for each point,
 * (b − a) / max(a, b), with a its mean distance to the others of its cluster
 * and b the least mean distance to another cluster's; 0 for a point alone in
 * its cluster. Quadratic: callers pass a sample of a large set.
 */
export function silhouette(points: readonly (readonly number[])[], clusters: readonly number[]): number {
  sameLength(points, clusters);
  const ids = [...new Set(clusters)];
  if (ids.length < 2) return 0;
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    const totals = new Map<number, { distance: number; count: number }>();
    for (let j = 0; j < points.length; j++) {
      if (i === j) continue;
      const entry = totals.get(clusters[j]!) ?? { distance: 0, count: 0 };
      entry.distance += distance(points[i]!, points[j]!);
      entry.count++;
      totals.set(clusters[j]!, entry);
    }
    const own = totals.get(clusters[i]!);
    if (!own) continue; // alone in its cluster: 0
    const a = own.distance / own.count;
    let b = Infinity;
    for (const [id, entry] of totals) if (id !== clusters[i]) b = Math.min(b, entry.distance / entry.count);
    sum += b === a ? 0 : (b - a) / Math.max(a, b);
  }
  return sum / points.length;
}

function distance(a: readonly number[], b: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(sum);
}

function sameLength(a: readonly unknown[], b: readonly unknown[]): void {
  if (a.length !== b.length) throw new Error(`metrics: ${a.length} values against ${b.length}`);
  if (a.length === 0) throw new Error('metrics: no values');
}
