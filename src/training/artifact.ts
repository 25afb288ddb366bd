/**
 * A trained model as it is stored (superduper._artifacts) and served (the
 * "trained" runtime): plain JSON of the parameters, the feature layout and the
 * standardization, so a prediction needs no ML library and a run's artifact
 * can be read by a person. The same spec, data and seed give the same bytes
 * (keys sorted, numbers printed the one way JavaScript prints them), so two
 * runs can be compared by their SHA-256.
 */
import { describe, encodeFeature, featureWidth, layoutWidth, type ClassValue } from './encode.js';
import type { FeatureLayout } from './types.js';

export const ARTIFACT_FORMAT = 'superduper-trained';
export const ARTIFACT_VERSION = 1;

/** Per encoded column: x' = (x - mean) / std (std 0 stored as 1). */
export interface Standardization {
  mean: number[];
  std: number[];
}

interface ArtifactHead {
  format: typeof ARTIFACT_FORMAT;
  version: typeof ARTIFACT_VERSION;
  features: FeatureLayout[];
}

/** What a dense layer does to its units' sums: relu (hidden layers), sigmoid (one unit: two classes), softmax (more classes). */
export type Activation = 'relu' | 'sigmoid' | 'softmax';

/** A fully connected layer: unit u's output is activation(weights[u]·inputs + biases[u]). */
export interface DenseLayer {
  /** One row per unit, of one weight per input (the layer before's units, or the standardized columns). */
  weights: number[][];
  biases: number[];
  activation: Activation;
}

/**
 * A classifier: its dense layers over the standardized columns, the last one
 * giving the classes' probabilities. logistic_regression is that last layer
 * alone, neural_network one relu layer before it. With two classes the last
 * layer is one sigmoid unit, P(classes[1]) (and P(classes[0]) = 1 - it); with
 * more it has a softmax unit per class.
 */
export interface ClassifierArtifact extends ArtifactHead {
  task: 'classification';
  algorithm: 'logistic_regression' | 'neural_network';
  standardize: Standardization;
  /** The classes the model predicts: the training rows' (sorted); a class they lacked is not here and never predicted. */
  classes: ClassValue[];
  model: { layers: DenseLayer[] };
}

export interface LinearArtifact extends ArtifactHead {
  task: 'regression';
  algorithm: 'linear_regression';
  /** y = coefficients·x + intercept, over the encoded (not standardized) columns. */
  model: { coefficients: number[]; intercept: number };
}

export interface KmeansArtifact extends ArtifactHead {
  task: 'clustering';
  algorithm: 'kmeans';
  standardize: Standardization;
  /** Centroids in the standardized space; a row's cluster is the index of the nearest (squared Euclidean, first on ties). */
  model: { centroids: number[][] };
}

export type TrainedArtifact = ClassifierArtifact | LinearArtifact | KmeansArtifact;

/** UTF-8 JSON with keys in sorted order: the same artifact, the same bytes. */
export function encodeArtifact(artifact: TrainedArtifact): Uint8Array {
  return new TextEncoder().encode(stableJson(artifact));
}

/** The artifact in `bytes`, checked to be one this version serves. */
export function decodeArtifact(bytes: Uint8Array): TrainedArtifact {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw artifactError(`it is not UTF-8 JSON (${(error as Error).message})`);
  }
  const head = parsed as Partial<ArtifactHead> | null;
  if (typeof head !== 'object' || head === null || head.format !== ARTIFACT_FORMAT) {
    throw artifactError(`its format is ${describe(head?.format)}, not "${ARTIFACT_FORMAT}": it was not written by a superduper trainer`);
  }
  if (head.version !== ARTIFACT_VERSION) {
    throw artifactError(`it is version ${describe(head.version)}; this superduper reads version ${ARTIFACT_VERSION}: run the same superduper version as the one that trained it`);
  }
  checkShape(parsed as TrainedArtifact);
  return parsed as TrainedArtifact;
}

/**
 * A function from a batch of inputs to one prediction each: the class value
 * (as in `classes`), the regression's number, or the cluster's index. An
 * input is an object of feature name to value or, when the model has exactly
 * one feature, that feature's value itself.
 */
export function predictor(artifact: TrainedArtifact): (inputs: readonly unknown[]) => unknown[] {
  const row = new Float64Array(layoutWidth(artifact.features));
  const single = artifact.features.length === 1 ? artifact.features[0]! : undefined;
  return (inputs) =>
    inputs.map((input, position) => {
      const object = isPlainObject(input);
      if (!object && !single) {
        throw new Error(`input ${position + 1} is ${describe(input)}; the model reads several features (${names(artifact)}), so each input must be an object of them`);
      }
      let offset = 0;
      for (const feature of artifact.features) {
        let value: unknown;
        if (object) {
          if (!(feature.name in input)) throw new Error(`input ${position + 1} has no feature "${feature.name}" (the model reads: ${names(artifact)})`);
          value = input[feature.name];
        } else {
          value = input;
        }
        const problem = encodeFeature(feature, value, row, offset);
        if (problem !== undefined) throw new Error(`feature "${feature.name}" of input ${position + 1} ${problem}`);
        offset += featureWidth(feature);
      }
      return predictionOf(artifact, row);
    });
}

/** The prediction for one encoded row (layoutWidth numbers): class value, number or cluster index. */
export function predictionOf(artifact: TrainedArtifact, row: Float64Array, offset = 0): ClassValue {
  switch (artifact.algorithm) {
    case 'logistic_regression':
    case 'neural_network':
      return artifact.classes[predictClass(artifact, row, offset)]!;
    case 'linear_regression':
      return predictLinear(artifact, row, offset);
    case 'kmeans':
      return nearestCentroid(artifact, row, offset).index;
  }
}

/** The probability of each of the artifact's classes for the encoded row at offset (they sum to 1). */
export function classProbabilities(artifact: ClassifierArtifact, row: Float64Array, offset = 0, out: Float64Array = new Float64Array(artifact.classes.length)): Float64Array {
  const { mean, std } = artifact.standardize;
  let values: Float64Array = new Float64Array(mean.length);
  for (let j = 0; j < mean.length; j++) values[j] = (row[offset + j]! - mean[j]!) / std[j]!;
  for (const layer of artifact.model.layers) values = applyDense(layer, values);
  if (artifact.classes.length === 2) {
    out[0] = 1 - values[0]!;
    out[1] = values[0]!;
  } else {
    out.set(values);
  }
  return out;
}

/** One dense layer's outputs for its inputs. */
function applyDense({ weights, biases, activation }: DenseLayer, inputs: Float64Array): Float64Array {
  const out = new Float64Array(weights.length);
  for (let u = 0; u < weights.length; u++) {
    const w = weights[u]!;
    let z = biases[u]!;
    for (let i = 0; i < inputs.length; i++) z += w[i]! * inputs[i]!;
    out[u] = activation === 'relu' ? Math.max(0, z) : activation === 'sigmoid' ? 1 / (1 + Math.exp(-z)) : z;
  }
  if (activation === 'softmax') {
    // Less the largest sum first, so that exp cannot overflow.
    let largest = -Infinity;
    for (const z of out) largest = Math.max(largest, z);
    let sum = 0;
    for (let u = 0; u < out.length; u++) sum += out[u] = Math.exp(out[u]! - largest);
    for (let u = 0; u < out.length; u++) out[u]! /= sum;
  }
  return out;
}

/** The index (into the artifact's classes) of the most probable class, the first of equals. */
export function predictClass(artifact: ClassifierArtifact, row: Float64Array, offset = 0, scratch?: Float64Array): number {
  const probabilities = classProbabilities(artifact, row, offset, scratch);
  let best = 0;
  for (let c = 1; c < probabilities.length; c++) if (probabilities[c]! > probabilities[best]!) best = c;
  return best;
}

export function predictLinear(artifact: LinearArtifact, row: Float64Array, offset = 0): number {
  const { coefficients, intercept } = artifact.model;
  let y = intercept;
  for (let j = 0; j < coefficients.length; j++) y += coefficients[j]! * row[offset + j]!;
  return y;
}

/** The nearest centroid to the encoded row, and the squared distance to it (in the standardized space). */
export function nearestCentroid(artifact: KmeansArtifact, row: Float64Array, offset = 0): { index: number; squaredDistance: number } {
  const { mean, std } = artifact.standardize;
  let index = 0;
  let squaredDistance = Infinity;
  artifact.model.centroids.forEach((centroid, c) => {
    let sum = 0;
    for (let j = 0; j < centroid.length; j++) sum += ((row[offset + j]! - mean[j]!) / std[j]! - centroid[j]!) ** 2;
    if (sum < squaredDistance) {
      squaredDistance = sum;
      index = c;
    }
  });
  return { index, squaredDistance };
}

/** Whether the arrays have the lengths the feature layout implies (a corrupt or hand-edited artifact fails here, not in a prediction). */
function checkShape(artifact: TrainedArtifact): void {
  if (!Array.isArray(artifact.features) || artifact.features.length === 0) throw artifactError('it lists no features');
  const width = layoutWidth(artifact.features);
  const numbers = (value: unknown, length: number) => Array.isArray(value) && value.length === length && value.every((n) => typeof n === 'number' && Number.isFinite(n));
  const standardized = () => {
    const s = (artifact as { standardize?: Standardization }).standardize;
    if (!s || !numbers(s.mean, width) || !numbers(s.std, width)) throw artifactError(`its standardization does not have ${width} columns`);
  };
  switch (artifact.algorithm) {
    case 'logistic_regression':
    case 'neural_network':
      standardized();
      checkClassifier(artifact, width, numbers);
      return;
    case 'linear_regression':
      if (!numbers(artifact.model?.coefficients, width) || !numbers([artifact.model.intercept], 1)) throw artifactError(`its coefficients are not ${width} numbers and an intercept`);
      return;
    case 'kmeans':
      standardized();
      if (!Array.isArray(artifact.model?.centroids) || artifact.model.centroids.length < 1 || !artifact.model.centroids.every((c) => numbers(c, width))) {
        throw artifactError(`its centroids are not lists of ${width} numbers`);
      }
      return;
    default:
      throw artifactError(`its algorithm ${describe((artifact as { algorithm?: unknown }).algorithm)} is not one this superduper serves`);
  }
}

/**
 * A classifier's layers: each one's weights as wide as its inputs, the hidden
 * layers relu, the last a sigmoid unit (two classes) or a softmax unit per
 * class; one layer for logistic regression, two for the neural network.
 */
function checkClassifier(artifact: ClassifierArtifact, width: number, numbers: (value: unknown, length: number) => boolean): void {
  const { classes, model, algorithm } = artifact;
  if (!Array.isArray(classes) || classes.length < 2) throw artifactError('it has fewer than two classes');
  if (model !== null && typeof model === 'object' && !('layers' in model) && 'weights' in model) {
    // A logistic regression as stored when ml-logistic-regression fitted it
    // (the same version number: only this shape changed): a list of
    // one-vs-rest weights per class instead of layers.
    throw artifactError('it is a logistic regression from an earlier superduper (one-vs-rest weights, no layers), which this version does not serve: train the trainer again and deploy the new run');
  }
  const layers = (model as { layers?: unknown } | null)?.layers;
  const count = algorithm === 'logistic_regression' ? 1 : 2;
  if (!Array.isArray(layers) || layers.length !== count) throw artifactError(`its model does not have the ${count} dense layer${count === 1 ? '' : 's'} of a ${algorithm}`);
  let inputs = width;
  layers.forEach((layer: Partial<DenseLayer> | null, l) => {
    const last = l === layers.length - 1;
    const units = last ? (classes.length === 2 ? 1 : classes.length) : Array.isArray(layer?.weights) ? layer.weights.length : 0;
    const activation = last ? (classes.length === 2 ? 'sigmoid' : 'softmax') : 'relu';
    const fits = typeof layer === 'object' && layer !== null && layer.activation === activation && units >= 1 && numbers(layer.biases, units) && Array.isArray(layer.weights) && layer.weights.length === units && layer.weights.every((w) => numbers(w, inputs));
    if (!fits) throw artifactError(`its layer ${l + 1} is not ${last ? units : 'n'} ${activation} unit${units === 1 ? '' : 's'} with a bias and ${inputs} weights each`);
    inputs = units;
  });
}

/** JSON with each object's keys sorted, recursively; refuses what JSON cannot hold exactly. */
function stableJson(value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`trained model artifact: cannot store the number ${value}`);
    return JSON.stringify(value);
  }
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  throw new Error(`trained model artifact: cannot store a ${typeof value}`);
}

function artifactError(detail: string): Error {
  return new Error(`trained model artifact: ${detail}`);
}

function names(artifact: TrainedArtifact): string {
  return artifact.features.map((feature) => feature.name).join(', ');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}
