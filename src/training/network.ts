/**
 * The classifiers' fit, with TensorFlow.js (issue 16): logistic regression is
 * one dense layer (a sigmoid unit for two classes, softmax over more), the
 * neural network one layer of relu units before it; mini-batches, Adam, log
 * loss. docs/benchmarks.md, "Training libraries": on 100,000 rows
 * ml-logistic-regression's full-batch descent took 135 s where the same model
 * in tfjs took 7 s with the same quality, and 16 hidden relu units reached an
 * accuracy of 0.96 against 0.78 on a rule that is not linear.
 *
 * Only the fit uses tfjs: what it returns is the layers' numbers, which the
 * predictor (artifact.ts) applies with plain arithmetic. The backend is the
 * pure-JavaScript "cpu" one: tfjs-node, the native one, downloads a binary
 * at install. Deterministic: the initializers are seeded from the spec's seed,
 * tfjs's own shuffle (the unseeded Math.random) is off and the caller gives
 * the rows in the order of its seeded shuffle, and the cpu backend's
 * arithmetic is plain JavaScript, the same on every run.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import type { DenseLayer } from './artifact.js';
import { mulberry32 } from './random.js';

// Production mode turns tfjs's warnings off, among them the banner the cpu
// backend prints on its first tensor in Node ("Hi, looks like you are
// running TensorFlow.js in Node.js...").
tf.enableProdMode();

export interface NetworkTraining {
  /** rows × width standardized numbers, row-major, in the order the mini-batches take them. */
  x: Float32Array;
  rows: number;
  width: number;
  /** Each row's class, 0 to classes - 1. */
  labels: Float32Array;
  /** Two or more. */
  classes: number;
  /** The hidden relu layer's units; undefined: none (logistic regression). */
  hiddenUnits?: number;
  epochs: number;
  learningRate: number;
  batchSize: number;
  seed: number;
}

let cpu: Promise<void> | undefined;

/** Selects the cpu backend, once per thread (the worker is a thread of its own). */
function cpuBackend(): Promise<void> {
  cpu ??= tf.setBackend('cpu').then((ok) => {
    if (!ok) throw new Error('training: TensorFlow.js could not start its cpu backend');
  });
  return cpu;
}

/**
 * Fits the network and returns its layers, input side first. Adds the time
 * of tfjs's own fit (model.fit) to timer.ms. Every tensor it makes is
 * disposed before it returns, so nothing accumulates across folds.
 */
export async function fitNetwork(training: NetworkTraining, timer: { ms: number }): Promise<DenseLayer[]> {
  await cpuBackend();
  const { rows, width, classes, hiddenUnits, seed } = training;
  const binary = classes === 2;
  // A seed per layer's initializer, drawn from the spec's (seed + i would give
  // seed s's second layer the first layer of seed s + 1).
  const random = mulberry32(seed);
  const initializer = () => tfl.initializers.glorotUniform({ seed: Math.floor(random() * 2 ** 32) });
  const model = tfl.sequential();
  if (hiddenUnits !== undefined) {
    model.add(tfl.layers.dense({ units: hiddenUnits, activation: 'relu', inputShape: [width], kernelInitializer: initializer() }));
  }
  model.add(tfl.layers.dense({
    units: binary ? 1 : classes,
    activation: binary ? 'sigmoid' : 'softmax',
    ...(hiddenUnits === undefined ? { inputShape: [width] } : {}),
    kernelInitializer: initializer(),
  }));
  const optimizer = tf.train.adam(training.learningRate);
  // The labels stay one number a row: the sparse loss one-hot encodes each
  // batch's alone, where categorical cross-entropy would need rows × classes.
  model.compile({ optimizer, loss: binary ? 'binaryCrossentropy' : 'sparseCategoricalCrossentropy' });
  // The encoded rows, as they are: a Float32Array of the right length is
  // the tensor's storage, not copied.
  const xs = tf.tensor2d(training.x, [rows, width], 'float32');
  const ys = tf.tensor2d(training.labels, [rows, 1], 'float32');
  try {
    const started = performance.now();
    try {
      // shuffle: false, because tfjs shuffles with Math.random; yieldEvery:
      // 'never', because the fit has its thread to itself (no event loop to
      // keep turning), and yielding costs a timer per batch.
      await model.fit(xs, ys, { epochs: training.epochs, batchSize: training.batchSize, shuffle: false, verbose: 0, yieldEvery: 'never' });
    } finally {
      timer.ms += performance.now() - started;
    }
    return model.layers.map((layer, l) => denseLayer(layer, l === model.layers.length - 1 ? (binary ? 'sigmoid' : 'softmax') : 'relu'));
  } finally {
    xs.dispose();
    ys.dispose();
    model.dispose();
    // The model disposes an optimizer only when it made it from a name.
    optimizer.dispose();
  }
}

/**
 * A tfjs dense layer's kernel (inputs × units, row-major) and bias as the
 * artifact keeps them: a row of weights per unit. Each float32 is written
 * with the 9 significant digits that give it back exactly, not the 17 of the
 * double it converts to: half the artifact, and no digits the fit never had.
 */
function denseLayer(layer: tfl.layers.Layer, activation: DenseLayer['activation']): DenseLayer {
  const [kernel, bias] = layer.getWeights();
  const [inputs, units] = kernel!.shape as [number, number];
  const k = kernel!.dataSync();
  const b = bias!.dataSync();
  const digits = (value: number) => Number(value.toPrecision(9));
  return {
    weights: Array.from({ length: units }, (_, u) => Array.from({ length: inputs }, (_, i) => digits(k[i * units + u]!))),
    biases: Array.from(b, digits),
    activation,
  };
}
