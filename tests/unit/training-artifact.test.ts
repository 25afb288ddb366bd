/** Trained-model artifacts (src/training/artifact.ts) and the "trained" runtime that serves them. */
import { describe, expect, it } from 'vitest';
import { TrainedRuntime } from '../../src/models/trained-runtime.js';
import type { ModelRecord } from '../../src/models/types.js';
import { decodeArtifact, encodeArtifact, predictor, type ClassifierArtifact, type LinearArtifact, type TrainedArtifact } from '../../src/training/artifact.js';
import { RowEncoder } from '../../src/training/encode.js';
import { fit, mulberry32 } from '../../src/training/fit.js';
import type { TrainingSpec } from '../../src/training/types.js';

const spec: TrainingSpec = {
  trainer: 'churn',
  task: 'classification',
  algorithm: 'logistic_regression',
  features: [
    { name: 'age', kind: 'number' },
    { name: 'plan', kind: 'category', categories: ['free', 'pro'] },
    { name: 'embedding', kind: 'vector', dim: 2 },
  ],
  target: 'churned',
  hyperparameters: { epochs: 100, batch_size: 16, learning_rate: 0.05 },
  seed: 3,
  validation: { holdout: 0.2 },
};

async function trained(algorithm: ClassifierArtifact['algorithm'] = 'logistic_regression'): Promise<TrainedArtifact> {
  const next = mulberry32(6);
  const encoder = new RowEncoder(spec);
  for (let i = 0; i < 60; i++) {
    const age = 20 + next() * 50;
    const plan = next() > 0.5 ? 'pro' : 'free';
    encoder.push({ age, plan, embedding: `[${next()},${next()}]`, churned: age > 45 || plan === 'free' ? 'yes' : 'no' });
  }
  return (await fit({ ...spec, algorithm }, encoder.finish())).artifact;
}

const inputs = [
  { age: 30, plan: 'pro', embedding: '[0.1,0.2]' },
  { age: 60, plan: 'pro', embedding: [0.5, 0.5] },
  { age: 25, plan: 'free', embedding: '[0.9,0.1]' },
  { age: '50', plan: 'unknown', embedding: [0, 0] },
];

describe('trained artifacts', () => {
  it.each(['logistic_regression', 'neural_network'] as const)('predict the same classes after encodeArtifact and decodeArtifact (%s)', async (algorithm) => {
    const artifact = await trained(algorithm);
    const before = predictor(artifact)(inputs);
    const bytes = encodeArtifact(artifact);
    const decoded = decodeArtifact(bytes);
    expect(decoded).toEqual(artifact);
    expect(Buffer.from(encodeArtifact(decoded)).equals(Buffer.from(bytes))).toBe(true);
    expect(predictor(decoded)(inputs)).toEqual(before);
    expect(before.every((label) => label === 'yes' || label === 'no')).toBe(true);
    // The rule the data came from: old or on the free plan churns.
    expect(before.slice(0, 3)).toEqual(['no', 'yes', 'yes']);
  });

  it('write keys in sorted order: the same artifact, the same bytes, whatever the key order in memory', async () => {
    const artifact = (await trained()) as ClassifierArtifact;
    const reordered = { model: artifact.model, classes: artifact.classes, standardize: artifact.standardize, features: artifact.features, algorithm: artifact.algorithm, task: artifact.task, version: artifact.version, format: artifact.format };
    expect(Buffer.from(encodeArtifact(reordered)).equals(Buffer.from(encodeArtifact(artifact)))).toBe(true);
    const text = new TextDecoder().decode(encodeArtifact(artifact));
    expect(text.startsWith('{"algorithm":"logistic_regression","classes":["no","yes"],"features":[')).toBe(true);
  });

  it('take a bare value when the model has one feature, and name a missing feature', async () => {
    const classifier = await trained();
    const linear: LinearArtifact = {
      format: 'superduper-trained',
      version: 1,
      task: 'regression',
      algorithm: 'linear_regression',
      features: [{ name: 'a', kind: 'number' }],
      model: { coefficients: [2], intercept: 1 },
    };
    expect(predictor(linear)([3, '4', { a: 5 }])).toEqual([7, 9, 11]);
    expect(() => predictor(linear)([{ b: 1 }])).toThrow('input 1 has no feature "a" (the model reads: a)');
    expect(() => predictor(classifier)([{ age: 30, plan: 'pro' }])).toThrow('input 1 has no feature "embedding" (the model reads: age, plan, embedding)');
    expect(() => predictor(classifier)([30])).toThrow('input 1 is 30; the model reads several features (age, plan, embedding), so each input must be an object of them');
    expect(() => predictor(linear)([null])).toThrow('feature "a" of input 1 is NULL');
  });

  it('refuse bytes that are not a trained model of this version, saying why', async () => {
    const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    expect(() => decodeArtifact(Uint8Array.of(0xff, 0xfe))).toThrow('trained model artifact: it is not UTF-8 JSON');
    expect(() => decodeArtifact(bytes({ format: 'onnx' }))).toThrow('trained model artifact: its format is "onnx", not "superduper-trained": it was not written by a superduper trainer');
    expect(() => decodeArtifact(bytes({ format: 'superduper-trained', version: 2 }))).toThrow('it is version 2; this superduper reads version 1');
    const artifact = (await trained('neural_network')) as ClassifierArtifact;
    const broken = { ...artifact, standardize: { mean: [0], std: [1] } };
    expect(() => decodeArtifact(bytes(broken))).toThrow('its standardization does not have 5 columns');
    const [hidden, output] = artifact.model.layers as [ClassifierArtifact['model']['layers'][number], ClassifierArtifact['model']['layers'][number]];
    const withLayers = (layers: unknown[]) => bytes({ ...artifact, model: { layers } });
    expect(() => decodeArtifact(withLayers([hidden]))).toThrow('its model does not have the 2 dense layers of a neural_network');
    expect(() => decodeArtifact(withLayers([{ ...hidden, weights: hidden.weights.map((w) => w.slice(1)) }, output]))).toThrow('its layer 1 is not n relu units with a bias and 5 weights each');
    expect(() => decodeArtifact(withLayers([hidden, { ...output, activation: 'softmax' }]))).toThrow('its layer 2 is not 1 sigmoid unit with a bias and 16 weights each');
    expect(() => decodeArtifact(withLayers([hidden, { ...output, biases: [null] }]))).toThrow('its layer 2 is not 1 sigmoid unit');
  });

  it('refuse a logistic regression of the shape ml-logistic-regression fitted (version 1, one-vs-rest weights), saying to train again', async () => {
    const artifact = (await trained()) as ClassifierArtifact;
    const old = { ...artifact, model: { weights: [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [-0.1, -0.2, -0.3, -0.4, -0.5, -0.6]] } };
    expect(() => decodeArtifact(new TextEncoder().encode(JSON.stringify(old)))).toThrow(
      'trained model artifact: it is a logistic regression from an earlier superduper (one-vs-rest weights, no layers), which this version does not serve: train the trainer again and deploy the new run',
    );
  });
});

describe('TrainedRuntime', () => {
  const record: ModelRecord = { name: 'churn_model', runtime: 'trained', output: { type: 'text' }, config: {}, artifact: null, spec_hash: 'x' };

  it('says where to look when no run is deployed yet', async () => {
    await expect(new TrainedRuntime().load(record, { fetchArtifact: async () => new Uint8Array() })).rejects.toThrow(
      'model "churn_model" has no trained version deployed yet; see superduper.training_runs',
    );
  });

  it('loads the deployed artifact by its hash and predicts with it', async () => {
    const artifact = await trained('neural_network');
    const stored = new Map([['abc123', encodeArtifact(artifact)]]);
    const model = await new TrainedRuntime().load({ ...record, artifact: 'abc123' }, { fetchArtifact: async (sha) => stored.get(sha)! });
    expect(await model.predict(inputs)).toEqual(predictor(artifact)(inputs));
    await expect(model.predict([{ age: 1 }])).rejects.toThrow('model "churn_model": input 1 has no feature "plan"');
  });
});
