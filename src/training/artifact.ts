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

export interface LogisticArtifact extends ArtifactHead {
  task: 'classification';
  algorithm: 'logistic_regression';
  standardize: Standardization;
  classes: ClassValue[];
  model: {
    /**
     * Per class c, its one-vs-rest weights over the standardized columns and
     * then a constant 1 (the intercept last): P(c) = 1 / (1 + e^-(w·[x, 1])).
     * null for a class absent from the rows fitted: it is never predicted.
     */
    weights: (number[] | null)[];
  };
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

export type TrainedArtifact = LogisticArtifact | LinearArtifact | KmeansArtifact;

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
      return artifact.classes[predictClass(artifact, row, offset)]!;
    case 'linear_regression':
      return predictLinear(artifact, row, offset);
    case 'kmeans':
      return nearestCentroid(artifact, row, offset).index;
  }
}

/** One-vs-rest P(c) of each class for the encoded row at offset (0 for classes never fitted). */
export function classProbabilities(artifact: LogisticArtifact, row: Float64Array, offset = 0, out: Float64Array = new Float64Array(artifact.classes.length)): Float64Array {
  const { mean, std } = artifact.standardize;
  const width = mean.length;
  artifact.model.weights.forEach((weights, c) => {
    if (weights === null) {
      out[c] = 0;
      return;
    }
    let z = weights[width]!;
    for (let j = 0; j < width; j++) z += weights[j]! * ((row[offset + j]! - mean[j]!) / std[j]!);
    out[c] = 1 / (1 + Math.exp(-z));
  });
  return out;
}

/** The index of the most probable class (the first of equals, as ml-logistic-regression's predict). */
export function predictClass(artifact: LogisticArtifact, row: Float64Array, offset = 0, scratch?: Float64Array): number {
  const probabilities = classProbabilities(artifact, row, offset, scratch);
  let best = 0;
  for (let c = 1; c < probabilities.length; c++) {
    if (artifact.model.weights[best] === null || (artifact.model.weights[c] !== null && probabilities[c]! > probabilities[best]!)) best = c;
  }
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
    case 'logistic_regression': {
      standardized();
      const { classes, model } = artifact;
      if (!Array.isArray(classes) || classes.length < 2) throw artifactError('it has fewer than two classes');
      if (!Array.isArray(model?.weights) || model.weights.length !== classes.length || !model.weights.every((w) => w === null || numbers(w, width + 1))) {
        throw artifactError(`its weights are not ${classes.length} lists of ${width + 1} numbers`);
      }
      return;
    }
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
