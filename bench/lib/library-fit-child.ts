/**
 * The training benchmark's baseline (bench/training.ts), in a process of its
 * own as the sidecar's fit is (in a fresh worker thread): reads the first
 * `rows` rows of table points into memory, standardizes them, and times
 * TensorFlow.js's own fit alone, written by hand as its documentation has it:
 * one dense sigmoid unit, Adam, binary cross-entropy, the trainer's default
 * learning rate and batch size for logistic_regression (read from the trainer's
 * own table of defaults, so the two cannot drift apart), the given epochs, no
 * shuffle.
 * Prints its seconds.
 *   node bench/dist/library-fit-child.mjs <uri> <rows> <epochs>
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import pg from 'pg';
import { HYPERPARAMETER_DEFAULTS } from '../../src/training/types.js';

const [uri, rowsText, epochsText] = process.argv.slice(2);
const { learning_rate: learningRate, batch_size: batchSize } = HYPERPARAMETER_DEFAULTS.logistic_regression;
const FEATURES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
const client = new pg.Client({ connectionString: uri });
await client.connect();
const read = await client.query<Record<string, number | boolean>>(`SELECT ${FEATURES.join(', ')}, label FROM points ORDER BY id LIMIT ${Number(rowsText)}`);
await client.end();
const rows = read.rows.length;
const width = FEATURES.length;
const mean = FEATURES.map((f) => read.rows.reduce((sum, r) => sum + (r[f] as number), 0) / rows);
const std = FEATURES.map((f, j) => Math.sqrt(read.rows.reduce((sum, r) => sum + ((r[f] as number) - mean[j]!) ** 2, 0) / rows) || 1);
const x = new Float32Array(rows * width);
const y = new Float32Array(rows);
read.rows.forEach((r, i) => {
  FEATURES.forEach((f, j) => (x[i * width + j] = ((r[f] as number) - mean[j]!) / std[j]!));
  y[i] = r.label ? 1 : 0;
});
tf.enableProdMode();
await tf.setBackend('cpu');
const model = tfl.sequential();
model.add(tfl.layers.dense({ units: 1, activation: 'sigmoid', inputShape: [width], kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }));
model.compile({ optimizer: tf.train.adam(learningRate), loss: 'binaryCrossentropy' });
const xs = tf.tensor2d(x, [rows, width]);
const ys = tf.tensor2d(y, [rows, 1]);
const started = performance.now();
await model.fit(xs, ys, { epochs: Number(epochsText), batchSize, shuffle: false, verbose: 0 });
process.stdout.write(`${(performance.now() - started) / 1000}\n`);
