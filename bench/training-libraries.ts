/**
 * Which library trains the trainer's models (issue 16): quality and speed of
 * the ml.js family and of TensorFlow.js on the same seeded data, 20 % held
 * out, for each of the trainer's three tasks.
 *   npx tsx bench/training-libraries.ts          # 10,000 rows
 *   ROWS=100000 npx tsx bench/training-libraries.ts
 * Prints one JSON document on stdout.
 *
 * The data: rows of 8 numeric features in [-1, 1]. Classification: a label
 * from a noisy rule that is not linear (two interacting features and a
 * threshold). Regression: a target linear in the same features, plus
 * Gaussian noise. Clustering: points from 4 Gaussian blobs. All seeded, so
 * each run measures the same thing; only the timings move between runs.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
// @ts-expect-error -- ml-cart ships no types; what is used of it is typed as CartTree below.
import { DecisionTreeClassifier } from 'ml-cart';
import { kmeans } from 'ml-kmeans';
import LogisticRegressionLibrary from 'ml-logistic-regression';
import { Matrix } from 'ml-matrix';
import { RandomForestClassifier } from 'ml-random-forest';
import MultivariateLinearRegression from 'ml-regression-multivariate-linear';
import { accuracy, macroF1, mae, r2, rocAuc, silhouette } from '../src/training/metrics.js';
import { seededRandom } from './lib/setup.js';

const ROWS = Number(process.env.ROWS ?? 10_000);
const FEATURES = 8;
/** The forest took ~300 s at 10,000 rows; at 100,000 it would take most of an hour, for a model already ruled out. */
const FOREST_MAX_ROWS = 10_000;
/** Silhouette is quadratic in the points: measured on at most this many held-out points, as the trainer does. */
const SILHOUETTE_SAMPLE = 2000;
/** TensorFlow.js: the same schedule for every model, so their times compare. */
const TF_EPOCHS = 20;
const TF_BATCH = 256;

// --- the libraries' untyped parts -------------------------------------------

/** ml-cart's tree; `root.classify` is its own leaf class distribution (predict() gives only the argmax), read for ROC AUC. */
interface CartTree {
  train(x: number[][], y: number[]): void;
  predict(x: number[][]): number[];
  root: { classify(row: number[]): Matrix };
}
const CartClassifier = DecisionTreeClassifier as new (options: { maxDepth: number }) => CartTree;

/** ml-logistic-regression, used as src/training/fit.ts uses it: one binary classifier (load() with a classifier of no weights builds it untrained). */
interface BinaryLogistic {
  train(x: Matrix, y: Matrix): void;
  testScores(x: Matrix): number[];
}
const LogisticRegression = LogisticRegressionLibrary as unknown as {
  load(json: { name: 'LogisticRegression'; numberClasses: number; classifiers: { numSteps: number; learningRate: number }[] }): { classifiers: BinaryLogistic[] };
};

// --- data -------------------------------------------------------------------

const random = seededRandom(7);
/** A standard normal draw (Box-Muller) from the seeded generator. */
const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());

const x: number[][] = [];
const label: number[] = [];
for (let i = 0; i < ROWS; i++) {
  const row = Array.from({ length: FEATURES }, () => random() * 2 - 1);
  const score = row[0]! * row[1]! * 2 + row[2]! - 0.5 * row[3]! + (random() - 0.5) * 0.3;
  x.push(row);
  label.push(score > 0 ? 1 : 0);
}
// Regression: the same features, a known linear target, noise of sd 0.5, so
// the best possible held-out scores are known: R² about 0.965, MAE about 0.40.
const COEFFICIENTS = [3, -2, 1.5, 0, 0.5, -1, 2, 0.25];
const INTERCEPT = 2;
const target = x.map((row) => row.reduce((sum, v, j) => sum + v * COEFFICIENTS[j]!, INTERCEPT) + 0.5 * gaussian());
// Clustering: 4 blob centres drawn in [-4, 4]^8, points around them with sd 1.
const centres = Array.from({ length: 4 }, () => Array.from({ length: FEATURES }, () => random() * 8 - 4));
const points = Array.from({ length: ROWS }, () => {
  const centre = centres[Math.floor(random() * centres.length)]!;
  return centre.map((c) => c + gaussian());
});

// The rows are drawn independently, so the last 20 % is as random a held-out part as any.
const cut = Math.floor(ROWS * 0.8);
const train = { x: x.slice(0, cut), label: label.slice(0, cut), target: target.slice(0, cut), points: points.slice(0, cut) };
const test = { x: x.slice(cut), label: label.slice(cut), target: target.slice(cut), points: points.slice(cut) };

/** Per-column mean and std of the training rows: the trainer standardizes before logistic regression, and the networks train better on it too. */
function standardizer(rows: number[][]): (row: number[]) => number[] {
  const mean = Array.from({ length: FEATURES }, (_, j) => rows.reduce((s, r) => s + r[j]!, 0) / rows.length);
  const std = mean.map((m, j) => Math.sqrt(rows.reduce((s, r) => s + (r[j]! - m) ** 2, 0) / rows.length) || 1);
  return (row) => row.map((v, j) => (v - mean[j]!) / std[j]!);
}

// --- measuring --------------------------------------------------------------

const round = (value: number | undefined, digits = 4) => (value === undefined ? null : Number(value.toFixed(digits)));

/** Times fit() (which includes building the library's input from the rows), then scores what it returns on the held-out rows. */
async function timeFit<T>(fit: () => T | Promise<T>): Promise<{ seconds: number; model: T }> {
  const started = performance.now();
  const model = await fit();
  return { seconds: round((performance.now() - started) / 1000, 3)!, model };
}

/** A fitted classifier: the held-out rows' classes, and P(label 1) where the model has it. */
type Classified = { classes: number[]; probability?: number[] };

async function classifier(model: string, fit: () => Promise<(rows: number[][]) => Classified> | ((rows: number[][]) => Classified)) {
  const { seconds, model: predict } = await timeFit(fit);
  const { classes, probability } = predict(test.x);
  const auc = probability ? rocAuc(test.label.map((l) => l === 1), probability) : undefined;
  return { model, fitSeconds: seconds, accuracy: round(accuracy(test.label, classes)), macroF1: round(macroF1(test.label, classes)), rocAuc: round(auc) };
}

async function regressor(model: string, fit: () => Promise<(rows: number[][]) => number[]> | ((rows: number[][]) => number[])) {
  const { seconds, model: predict } = await timeFit(fit);
  const predicted = predict(test.x);
  return { model, fitSeconds: seconds, r2: round(r2(test.target, predicted)), mae: round(mae(test.target, predicted)) };
}

/** Runs a tf model on rows and reads its single output column back as numbers. */
function tfPredict(model: tf.LayersModel, rows: number[][]): number[] {
  return tf.tidy(() => Array.from((model.predict(tf.tensor2d(rows)) as tf.Tensor).dataSync()));
}

/** tf's fit: shuffle off because tfjs shuffles with the unseeded Math.random (the rows are in random order already); verbose off keeps stdout JSON. */
async function tfFit(model: tf.LayersModel, rows: number[][], y: number[]): Promise<void> {
  const xs = tf.tensor2d(rows);
  const ys = tf.tensor2d(y, [y.length, 1]);
  await model.fit(xs, ys, { epochs: TF_EPOCHS, batchSize: TF_BATCH, shuffle: false, verbose: 0 });
  xs.dispose();
  ys.dispose();
}

// --- TensorFlow.js setup ----------------------------------------------------

// Prod mode turns off tfjs's logging, among it the "Hi, looks like you are
// running TensorFlow.js in Node.js" banner (console.warn, on the first tensor).
tf.enableProdMode();
// Pure JavaScript: tfjs-node (native) downloads a binary at install, which this machine cannot.
await tf.setBackend('cpu');
await tf.ready();

// --- classification ---------------------------------------------------------

const classification = [];
const skipped: string[] = [];

classification.push(
  await classifier('ml-logistic-regression (standardized + intercept column, 1000 steps, learning_rate 0.5 as the trainer: ÷ training rows)', () => {
    const scale = standardizer(train.x);
    // The library fits no intercept: a constant 1 is the last column (as src/training/fit.ts does).
    const design = (rows: number[][]) => new Matrix(rows.map((row) => [...scale(row), 1]));
    // Its gradient is a sum over the rows: the trainer divides the rate by the row count, so the same is measured here.
    const binary = LogisticRegression.load({ name: 'LogisticRegression', numberClasses: 1, classifiers: [{ numSteps: 1000, learningRate: 0.5 / train.x.length }] }).classifiers[0]!;
    binary.train(design(train.x), Matrix.columnVector(train.label));
    return (rows) => {
      const probability = binary.testScores(design(rows));
      return { classes: probability.map((p) => (p >= 0.5 ? 1 : 0)), probability };
    };
  }),
);

classification.push(
  await classifier('ml-cart DecisionTreeClassifier (maxDepth 8)', () => {
    const tree = new CartClassifier({ maxDepth: 8 });
    tree.train(train.x, train.label);
    return (rows) => ({
      classes: tree.predict(rows),
      // The leaf's share of label 1: its distribution has one column per label
      // up to the largest it holds, so a leaf of 0s only has no column 1.
      probability: rows.map((row) => {
        const leaf = tree.root.classify(row);
        return leaf.columns > 1 ? leaf.get(0, 1) : 0;
      }),
    });
  }),
);

if (ROWS <= FOREST_MAX_ROWS) {
  classification.push(
    await classifier('ml-random-forest (50 trees, seed 3)', () => {
      const forest = new RandomForestClassifier({ nEstimators: 50, seed: 3, maxFeatures: 0.8, replacement: true });
      forest.train(train.x, train.label);
      return (rows) => {
        // Each tree's vote, rows × trees: P(1) is the share of trees voting 1
        // (predictProbability's reduce starts from the first vote instead of 0).
        const votes = forest.predictionValues(rows).to2DArray();
        const probability = votes.map((row) => row.filter((v) => v === 1).length / row.length);
        return { classes: forest.predict(rows), probability };
      };
    }),
  );
} else {
  skipped.push(`ml-random-forest: only at ROWS <= ${FOREST_MAX_ROWS} (it took ~300 s at 10,000)`);
}

/** A seeded tfjs binary classifier: the given hidden layers, then one sigmoid unit, Adam at 0.01, log loss. */
async function tfClassifier(hidden: number[], seed: number) {
  const scale = standardizer(train.x);
  const model = tf.sequential();
  hidden.forEach((units, i) => {
    model.add(tf.layers.dense({ units, activation: 'relu', inputShape: i === 0 ? [FEATURES] : undefined, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + i }) }));
  });
  model.add(tf.layers.dense({ units: 1, activation: 'sigmoid', inputShape: hidden.length === 0 ? [FEATURES] : undefined, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + hidden.length }) }));
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'binaryCrossentropy' });
  await tfFit(model, train.x.map(scale), train.label);
  return (rows: number[][]): Classified => {
    const probability = tfPredict(model, rows.map(scale));
    return { classes: probability.map((p) => (p >= 0.5 ? 1 : 0)), probability };
  };
}

classification.push(await classifier(`tfjs cpu logistic regression (1 sigmoid unit, Adam 0.01, ${TF_EPOCHS} epochs, batch ${TF_BATCH}, seed 1)`, () => tfClassifier([], 1)));
classification.push(await classifier(`tfjs cpu MLP (16 relu, 1 sigmoid, Adam 0.01, ${TF_EPOCHS} epochs, batch ${TF_BATCH}, seed 1)`, () => tfClassifier([16], 1)));

// --- regression -------------------------------------------------------------

const regression = [];

regression.push(
  await regressor('ml-regression-multivariate-linear (intercept, no statistics)', () => {
    // statistics off, as the trainer: the standard errors cost more and are not kept.
    const model = new MultivariateLinearRegression(train.x, train.target.map((v) => [v]), { intercept: true, statistics: false });
    return (rows) => model.predict(rows).map((p) => p[0]!);
  }),
);

regression.push(
  await regressor(`tfjs cpu linear layer (1 unit, Adam 0.05, mean squared error, ${TF_EPOCHS} epochs, batch ${TF_BATCH}, seed 1)`, async () => {
    const model = tf.sequential();
    model.add(tf.layers.dense({ units: 1, inputShape: [FEATURES], kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
    // 0.05 rather than the classifiers' 0.01: the intercept (2) must be reached from 0 within the fixed epochs.
    model.compile({ optimizer: tf.train.adam(0.05), loss: 'meanSquaredError' });
    await tfFit(model, train.x, train.target);
    return (rows) => tfPredict(model, rows);
  }),
);

// --- clustering -------------------------------------------------------------

// Fitted on the training points; the held-out points are assigned to their
// nearest centroid and the silhouette measured on the first of them, as the
// trainer does. The blobs share one scale, so the points are not standardized.
const clustering = [];
{
  const { seconds, model } = await timeFit(() => kmeans(train.points, 4, { seed: 1, initialization: 'kmeans++', maxIterations: 100 }));
  const sample = test.points.slice(0, SILHOUETTE_SAMPLE);
  clustering.push({
    model: 'ml-kmeans (k 4, kmeans++, seed 1, at most 100 iterations)',
    fitSeconds: seconds,
    iterations: model.iterations,
    converged: model.converged,
    silhouette: round(silhouette(sample, model.nearest(sample))),
    silhouetteSample: sample.length,
  });
}

const cpus = os.cpus();
const report = {
  rows: ROWS,
  features: FEATURES,
  trainRows: cut,
  heldOutRows: ROWS - cut,
  machine: { cores: cpus.length, cpu: cpus[0]?.model, node: process.version, tfBackend: tf.getBackend(), tfVersion: tf.version.tfjs },
  classification,
  regression,
  clustering,
  skipped,
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
