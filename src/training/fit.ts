/**
 * Fits a trainer's model on encoded rows (encode.ts) and measures it on rows
 * it did not see: a seeded held-out split, or k folds (the metrics their mean,
 * the model then fitted on all rows). CPU work of seconds to minutes (async
 * only because TensorFlow.js's fit is): the sidecar runs it in a worker
 * thread (fit-in-worker.ts). Deterministic: the same spec, data
 * and seed give the same artifact, byte for byte.
 */
import { kmeans } from 'ml-kmeans';
import { Matrix } from 'ml-matrix';
import MultivariateLinearRegression from 'ml-regression-multivariate-linear';
import {
  ARTIFACT_FORMAT,
  ARTIFACT_VERSION,
  classProbabilities,
  nearestCentroid,
  predictClass,
  predictLinear,
  type ClassifierArtifact,
  type KmeansArtifact,
  type LinearArtifact,
  type Standardization,
  type TrainedArtifact,
} from './artifact.js';
import { layoutWidth, type EncodedData } from './encode.js';
import { TrainingError } from './errors.js';
import { accuracy, macroF1, mae, r2, rocAuc, silhouette } from './metrics.js';
import { fitNetwork } from './network.js';
import { shuffledRows } from './random.js';
import { HYPERPARAMETER_DEFAULTS, resolveHyperparameters, type TrainingSpec } from './types.js';

export { mulberry32, shuffledRows } from './random.js';

export interface FitResult {
  artifact: TrainedArtifact;
  /** accuracy, f1, roc_auc (classification); r2, mae (regression); silhouette, inertia (clustering). */
  metrics: Record<string, number>;
  /** Milliseconds inside the libraries' own fit calls (all folds and the final fit), so callers can tell their overhead from the fit's. */
  fitMs: number;
  /** Rows the returned model was fitted on. */
  trainedRows: number;
  /** Rows the metrics were measured on, by a model that had not seen them (with folds: every row, once). */
  heldOutRows: number;
}

/** Silhouette is quadratic in the rows: it is measured on at most this many held-out rows (a random sample: the held-out rows are in shuffled order). */
export const SILHOUETTE_SAMPLE = 2000;

export async function fit(spec: TrainingSpec, data: EncodedData): Promise<FitResult> {
  const hyperparameters = resolveHyperparameters(spec);
  checkData(spec, data);
  const fail = (detail: string): never => {
    throw new TrainingError(spec.trainer, detail);
  };
  const order = shuffledRows(data.rows, spec.seed);
  const timer = { ms: 0 };
  const learn = (rows: Uint32Array) => learnModel({ spec, hyperparameters, data, rows, timer, fail });

  if ('holdout' in spec.validation) {
    const testCount = Math.round(data.rows * spec.validation.holdout);
    if (testCount < 1) fail(`holding out ${spec.validation.holdout} of ${data.rows} rows leaves no row to measure on; raise "holdout", use more rows, or use {"folds": n}`);
    const test = order.subarray(0, testCount);
    const train = order.subarray(testCount);
    checkTrainPart(spec, data, train, 'the training part of the held-out split', fail);
    const artifact = await learn(train);
    return { artifact, metrics: evaluate(artifact, data, test), fitMs: timer.ms, trainedRows: train.length, heldOutRows: test.length };
  }

  const folds = spec.validation.folds;
  if (folds > data.rows) fail(`${folds} folds need at least ${folds} rows, and the query returned ${data.rows}; use fewer folds or more rows`);
  const sums = new Map<string, { sum: number; count: number }>();
  for (let f = 0; f < folds; f++) {
    const start = Math.floor((f * data.rows) / folds);
    const end = Math.floor(((f + 1) * data.rows) / folds);
    const test = order.subarray(start, end);
    const train = new Uint32Array(data.rows - test.length);
    train.set(order.subarray(0, start));
    train.set(order.subarray(end), start);
    checkTrainPart(spec, data, train, `the training part of fold ${f + 1}`, fail);
    for (const [name, value] of Object.entries(evaluate(await learn(train), data, test))) {
      const entry = sums.get(name) ?? { sum: 0, count: 0 };
      entry.sum += value;
      entry.count++;
      sums.set(name, entry);
    }
  }
  const metrics: Record<string, number> = {};
  for (const [name, { sum, count }] of sums) metrics[name] = sum / count;
  const all = new Uint32Array(data.rows).map((_, i) => i);
  const artifact = await learn(all);
  return { artifact, metrics, fitMs: timer.ms, trainedRows: data.rows, heldOutRows: data.rows };
}

function checkData(spec: TrainingSpec, data: EncodedData): void {
  const width = layoutWidth(spec.features);
  if (data.width !== width || data.x.length !== data.rows * width) {
    throw new Error(`fit: the data is ${data.rows} rows × ${data.width} (${data.x.length} numbers), but the spec's features encode to ${width} numbers a row`);
  }
  if (spec.task !== 'clustering' && data.y?.length !== data.rows) throw new Error(`fit: ${spec.task} needs a target for each of the ${data.rows} rows`);
  if (spec.task === 'classification' && (data.classes?.length ?? 0) < 2) throw new Error('fit: classification needs the classes (two or more)');
}

function checkTrainPart(spec: TrainingSpec, data: EncodedData, train: Uint32Array, part: string, fail: (detail: string) => never): void {
  if (spec.task === 'classification') {
    const seen = new Set<number>();
    for (const row of train) seen.add(data.y![row]!);
    if (seen.size < 2) fail(`${part} (${train.length} rows) has one class only; a classifier needs two or more: use more rows, a smaller holdout or fewer folds`);
  }
  if (spec.algorithm === 'kmeans' && train.length < spec.hyperparameters.k!) {
    fail(`${part} has ${train.length} rows, fewer than k = ${spec.hyperparameters.k}; lower "k" or use more rows`);
  }
}

/** What each algorithm's learner gets: the rows to fit on, the library timer, and how to fail. */
interface Learning {
  spec: TrainingSpec;
  hyperparameters: Record<string, number>;
  data: EncodedData;
  rows: Uint32Array;
  timer: { ms: number };
  fail: (detail: string) => never;
}

/** Fits the spec's algorithm on the given rows and returns the artifact; adds the library's own time to timer.ms. */
async function learnModel(learning: Learning): Promise<TrainedArtifact> {
  switch (learning.spec.algorithm) {
    case 'logistic_regression':
    case 'neural_network':
      return learnClassifier(learning);
    case 'linear_regression':
      return learnLinear(learning);
    case 'kmeans':
      return learnKmeans(learning);
  }
}

function artifactHead(spec: TrainingSpec) {
  return { format: ARTIFACT_FORMAT, version: ARTIFACT_VERSION, features: spec.features } as const;
}

/**
 * Logistic regression or the neural network (network.ts) on the standardized
 * rows. The training rows are copied once, standardized, into float32 (what
 * tfjs computes in) in an order of the seed's, which the mini-batches follow
 * in every epoch: the final fit of {"folds": n} is given the rows as the
 * query returned them, perhaps sorted by the target, and batches of one class
 * each would pull the model to and fro.
 */
async function learnClassifier({ spec, hyperparameters, data, rows, timer, fail }: Learning): Promise<ClassifierArtifact> {
  const standardize = standardization(data, rows);
  const { mean, std } = standardize;
  const { width } = data;
  // The model's classes are the rows' (a class of the data absent from them
  // cannot be learnt): indices into data.classes, sorted, numbered 0..n-1.
  const seen = new Set<number>();
  for (const row of rows) seen.add(data.y![row]!);
  const present = [...seen].sort((a, b) => a - b);
  const label = new Map(present.map((c, i) => [c, i]));
  const x = new Float32Array(rows.length * width);
  const labels = new Float32Array(rows.length);
  shuffledRows(rows.length, spec.seed).forEach((k, i) => {
    const row = rows[k]!;
    for (let j = 0; j < width; j++) x[i * width + j] = (data.x[row * width + j]! - mean[j]!) / std[j]!;
    labels[i] = label.get(data.y![row]!)!;
  });
  const layers = await fitNetwork({
    x,
    rows: rows.length,
    width,
    labels,
    classes: present.length,
    ...(spec.algorithm === 'neural_network' ? { hiddenUnits: hyperparameters.hidden_units! } : {}),
    epochs: spec.hyperparameters.epochs ?? defaultEpochs(rows.length, hyperparameters.batch_size!),
    learningRate: hyperparameters.learning_rate!,
    batchSize: hyperparameters.batch_size!,
    seed: spec.seed,
  }, timer);
  if (!layers.every((layer) => layer.biases.every(Number.isFinite) && layer.weights.every((w) => w.every(Number.isFinite)))) {
    fail(`the ${spec.algorithm} diverged (its weights are not finite); lower "learning_rate"`);
  }
  const algorithm = spec.algorithm as ClassifierArtifact['algorithm'];
  return { ...artifactHead(spec), task: 'classification', algorithm, standardize, classes: present.map((c) => data.classes![c]!), model: { layers } };
}

/**
 * Epochs when the spec gives none: the default (20, types.ts), or, on a
 * table too small for that many passes to make MIN_STEPS steps of the
 * optimizer, as many as do. A table of fewer rows than a batch is one step
 * a pass: 20 steps left 240 training rows of a linear rule at 0.35 accuracy
 * (the first defaults, Adam at 0.01). 500 rather than more, measured on
 * bench/training-libraries.ts's rule: at 200 and 1,000 rows logistic
 * regression reaches ml-logistic-regression's scores (ROC AUC 0.787, 0.847)
 * with 500 steps and gains nothing from 1,000 or 2,000, while the network
 * scores less with 2,000 (accuracy 0.85 against 0.925 at 200 rows: it
 * overfits) and each step costs time: 2,000 steps took 4-30× as long.
 */
export function defaultEpochs(rows: number, batchSize: number): number {
  const batches = Math.ceil(rows / batchSize);
  return Math.max(HYPERPARAMETER_DEFAULTS.logistic_regression.epochs!, Math.ceil(MIN_STEPS / batches));
}
const MIN_STEPS = 500;

function learnLinear({ spec, data, rows, timer, fail }: Learning): LinearArtifact {
  // The constant column is ours, not the library's (intercept: true
  // would addColumn, copying every row once more).
  const x = new Matrix(rows.length, data.width + 1);
  rows.forEach((row, i) => {
    for (let j = 0; j < data.width; j++) x.set(i, j, data.x[row * data.width + j]!);
    x.set(i, data.width, 1);
  });
  const y = Matrix.columnVector(Float64Array.from(rows, (row) => data.y![row]!));
  // statistics: off, because the standard errors cost several more n × 1
  // matrices and the artifact does not keep them.
  const model = timed(timer, () => new MultivariateLinearRegression(x, y, { intercept: false, statistics: false }));
  const coefficients = model.weights.slice(0, data.width).map((w) => w[0]!);
  const intercept = model.weights[data.width]![0]!;
  if (![...coefficients, intercept].every(Number.isFinite)) fail('the linear regression has no finite solution; check the features for huge values');
  return { ...artifactHead(spec), task: 'regression', algorithm: 'linear_regression', model: { coefficients, intercept } };
}

function learnKmeans({ spec, hyperparameters, data, rows, timer }: Learning): KmeansArtifact {
  const standardize = standardization(data, rows);
  const points = Array.from(rows, (row) => Array.from(writeStandardized(data, row, standardize, new Float64Array(data.width))));
  const result = timed(timer, () => kmeans(points, hyperparameters.k!, { seed: spec.seed, maxIterations: hyperparameters.max_iterations!, initialization: 'kmeans++' }));
  return { ...artifactHead(spec), task: 'clustering', algorithm: 'kmeans', standardize, model: { centroids: result.centroids } };
}

/** The metrics of the artifact's predictions for the given (held-out) rows. */
function evaluate(artifact: TrainedArtifact, data: EncodedData, rows: Uint32Array): Record<string, number> {
  switch (artifact.algorithm) {
    case 'logistic_regression':
    case 'neural_network': {
      const labels = Array.from(rows, (row) => data.y![row]!);
      // The model's classes are those of its training rows: their indices in the data's.
      const dataIndex = artifact.classes.map((value) => data.classes!.indexOf(value));
      const scratch = new Float64Array(artifact.classes.length);
      const predicted = Array.from(rows, (row) => dataIndex[predictClass(artifact, data.x, row * data.width, scratch)]!);
      const metrics: Record<string, number> = { accuracy: accuracy(labels, predicted), f1: macroF1(labels, predicted) };
      const auc = rocAucOf(artifact, dataIndex, data, rows, labels);
      if (auc !== undefined) metrics.roc_auc = auc;
      return metrics;
    }
    case 'linear_regression': {
      const actual = Array.from(rows, (row) => data.y![row]!);
      const predicted = Array.from(rows, (row) => predictLinear(artifact, data.x, row * data.width));
      return { r2: r2(actual, predicted), mae: mae(actual, predicted) };
    }
    case 'kmeans': {
      let inertia = 0;
      const clusters = Array.from(rows, (row) => {
        const nearest = nearestCentroid(artifact, data.x, row * data.width);
        inertia += nearest.squaredDistance;
        return nearest.index;
      });
      const sample = rows.subarray(0, SILHOUETTE_SAMPLE);
      const points = Array.from(sample, (row) => Array.from(writeStandardized(data, row, artifact.standardize, new Float64Array(data.width))));
      return { silhouette: silhouette(points, clusters.slice(0, sample.length)), inertia };
    }
  }
}

/**
 * Binary: AUC of the second class's probability; more classes: the mean of
 * each class's one-vs-rest AUC (classes absent from the rows skipped; a class
 * the model lacks scores 0). dataIndex: each model class's index in the data's.
 */
function rocAucOf(artifact: ClassifierArtifact, dataIndex: number[], data: EncodedData, rows: Uint32Array, labels: number[]): number | undefined {
  const classes = data.classes!.length;
  // A column of scores per class, not an array per row: on a million rows an
  // array per row is a hundred megabytes of objects.
  const scores = data.classes!.map(() => new Array<number>(rows.length).fill(0));
  const probabilities = new Float64Array(artifact.classes.length);
  rows.forEach((row, i) => {
    classProbabilities(artifact, data.x, row * data.width, probabilities);
    for (let c = 0; c < probabilities.length; c++) scores[dataIndex[c]!]![i] = probabilities[c]!;
  });
  if (classes === 2) return rocAuc(labels.map((label) => label === 1), scores[1]!);
  const aucs: number[] = [];
  for (let c = 0; c < classes; c++) {
    const auc = rocAuc(labels.map((label) => label === c), scores[c]!);
    if (auc !== undefined) aucs.push(auc);
  }
  return aucs.length === 0 ? undefined : aucs.reduce((s, v) => s + v, 0) / aucs.length;
}

/** Mean and (population) standard deviation of each column over the rows; a constant column's std is 1, so it standardizes to 0 (or near it). */
function standardization(data: EncodedData, rows: Uint32Array): Standardization {
  const { width, x } = data;
  const mean = new Float64Array(width);
  const squares = new Float64Array(width);
  for (const row of rows) for (let j = 0; j < width; j++) mean[j]! += x[row * width + j]!;
  for (let j = 0; j < width; j++) mean[j]! /= rows.length;
  // Two passes (mean, then squared deviations): the one-pass formula loses
  // digits on columns with a large mean and a small spread.
  for (const row of rows) for (let j = 0; j < width; j++) squares[j]! += (x[row * width + j]! - mean[j]!) ** 2;
  // A column constant but for rounding (the mean of equal float32 values is
  // not exactly any of them: found as a std of 3e-18 on an embedding's unused
  // dimension) is constant: dividing by that std would turn a difference in
  // the last digit of an input into millions.
  const std = Array.from(squares, (s, j) => {
    const deviation = Math.sqrt(s / rows.length);
    return deviation > 1e-9 * Math.max(1, Math.abs(mean[j]!)) ? deviation : 1;
  });
  return { mean: Array.from(mean), std };
}

function writeStandardized(data: EncodedData, row: number, { mean, std }: Standardization, out: Float64Array): Float64Array {
  for (let j = 0; j < data.width; j++) out[j] = (data.x[row * data.width + j]! - mean[j]!) / std[j]!;
  return out;
}

function timed<T>(timer: { ms: number }, work: () => T): T {
  const started = performance.now();
  try {
    return work();
  } finally {
    timer.ms += performance.now() - started;
  }
}
