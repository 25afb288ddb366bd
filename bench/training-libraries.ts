/**
 * Which library trains the trainer's models (issue 16): quality and speed of
 * the ml.js family's classifiers on the same data, held out 20 %.
 *   npx tsx bench/training-libraries.ts
 * The data: rows of 8 numeric features and a label from a noisy rule that is
 * not linear (two interacting features and a threshold), seeded, so that each
 * run measures the same thing.
 */
import { Matrix } from 'ml-matrix';
import LogisticRegression from 'ml-logistic-regression';
import { RandomForestClassifier } from 'ml-random-forest';
import { accuracy, macroF1 } from '../src/training/metrics.js';
import { seededRandom } from './lib/setup.js';

function dataset(rows: number, seed: number): { x: number[][]; y: number[] } {
  const next = seededRandom(seed);
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < rows; i++) {
    const row = Array.from({ length: 8 }, () => next() * 2 - 1);
    const score = row[0]! * row[1]! * 2 + row[2]! - 0.5 * row[3]! + (next() - 0.5) * 0.3;
    x.push(row);
    y.push(score > 0 ? 1 : 0);
  }
  return { x, y };
}

const { x, y } = dataset(Number(process.env.ROWS ?? 10_000), 7);
const cut = Math.floor(x.length * 0.8);
const [trainX, testX, trainY, testY] = [x.slice(0, cut), x.slice(cut), y.slice(0, cut), y.slice(cut)];

const results: Array<{ model: string; fitSeconds: number; accuracy: number; macroF1: number }> = [];
const measure = (model: string, fit: () => (rows: number[][]) => number[]) => {
  const started = performance.now();
  const predict = fit();
  const fitSeconds = (performance.now() - started) / 1000;
  const predicted = predict(testX);
  results.push({ model, fitSeconds: Number(fitSeconds.toFixed(3)), accuracy: Number(accuracy(testY, predicted).toFixed(4)), macroF1: Number(macroF1(testY, predicted).toFixed(4)) });
};

measure('ml-logistic-regression (1000 steps, learning rate 0.5)', () => {
  const model = new LogisticRegression({ numSteps: 1000, learningRate: 0.5 });
  model.train(new Matrix(trainX), Matrix.columnVector(trainY));
  return (rows) => model.predict(new Matrix(rows));
});
measure('ml-random-forest (50 trees, seed 3)', () => {
  const model = new RandomForestClassifier({ nEstimators: 50, seed: 3, maxFeatures: 0.8, replacement: true });
  model.train(trainX, trainY);
  return (rows) => model.predict(rows);
});
process.stdout.write(`${JSON.stringify({ rows: x.length, features: 8, heldOut: testX.length, results }, null, 2)}\n`);
