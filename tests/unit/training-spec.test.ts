/** checkSpec (src/training/types.ts): the specs a fit refuses, and the words it refuses them with. */
import { describe, expect, it } from 'vitest';
import { TrainingError } from '../../src/training/errors.js';
import { HYPERPARAMETER_DEFAULTS, checkSpec, resolveHyperparameters, type TrainingSpec } from '../../src/training/types.js';

const segments: TrainingSpec = {
  trainer: 'segments',
  task: 'clustering',
  algorithm: 'kmeans',
  features: [{ name: 'spend', kind: 'number' }],
  hyperparameters: { k: 3 },
  seed: 7,
  validation: { holdout: 0.2 },
};
const churn: TrainingSpec = {
  trainer: 'churn',
  task: 'classification',
  algorithm: 'logistic_regression',
  features: [{ name: 'age', kind: 'number' }],
  target: 'churned',
  hyperparameters: {},
  seed: 1,
  validation: { folds: 5 },
};

function refusal(spec: unknown): string {
  try {
    checkSpec(spec);
  } catch (error) {
    expect(error).toBeInstanceOf(TrainingError);
    return (error as Error).message;
  }
  throw new Error('expected checkSpec to refuse the spec');
}

describe('checkSpec', () => {
  it('accepts good specs and fills in the defaults', () => {
    expect(() => checkSpec(segments)).not.toThrow();
    expect(() => checkSpec(churn)).not.toThrow();
    expect(resolveHyperparameters(churn)).toEqual(HYPERPARAMETER_DEFAULTS.logistic_regression);
    expect(Object.keys(HYPERPARAMETER_DEFAULTS.logistic_regression).sort()).toEqual(['batch_size', 'epochs', 'learning_rate']);
    expect(resolveHyperparameters({ ...churn, algorithm: 'neural_network', hyperparameters: { epochs: 3 } })).toEqual({ ...HYPERPARAMETER_DEFAULTS.logistic_regression, epochs: 3, hidden_units: 16 });
    expect(resolveHyperparameters(segments)).toEqual({ k: 3, max_iterations: 100 });
    expect(HYPERPARAMETER_DEFAULTS.linear_regression).toEqual({});
  });

  it('names the trainer, the hyperparameter and the allowed names', () => {
    expect(refusal({ ...churn, hyperparameters: { steps: 10 } })).toBe('trainer "churn": hyperparameter "steps" is not one of logistic_regression\'s: epochs, learning_rate, batch_size');
    expect(refusal({ ...churn, hyperparameters: { hidden_units: 8 } })).toContain('hyperparameter "hidden_units" is not one of logistic_regression\'s');
    expect(refusal({ ...churn, algorithm: 'neural_network', hyperparameters: { hidden: 8 } })).toBe(
      'trainer "churn": hyperparameter "hidden" is not one of neural_network\'s: epochs, learning_rate, batch_size, hidden_units',
    );
    expect(refusal({ ...churn, task: 'regression', algorithm: 'linear_regression', hyperparameters: { epochs: 10 } })).toBe(
      'trainer "churn": hyperparameter "epochs": linear_regression takes no hyperparameters; remove it',
    );
  });

  it('checks the ranges: k an integer of at least 2 and required; epochs, batch size and hidden units whole and bounded; a learning rate above 0, at most 10', () => {
    expect(refusal({ ...segments, hyperparameters: {} })).toBe('trainer "segments": kmeans needs the hyperparameter "k"');
    expect(refusal({ ...segments, hyperparameters: { k: 1 } })).toBe('trainer "segments": hyperparameter "k" is 1; use an integer of at least 2');
    expect(refusal({ ...segments, hyperparameters: { k: 2.5 } })).toContain('hyperparameter "k" is 2.5');
    expect(refusal({ ...churn, hyperparameters: { learning_rate: 0 } })).toBe('trainer "churn": hyperparameter "learning_rate" is 0; use a number above 0 and at most 10');
    expect(refusal({ ...churn, hyperparameters: { learning_rate: 10.5 } })).toContain('hyperparameter "learning_rate" is 10.5; use a number above 0 and at most 10');
    expect(() => checkSpec({ ...churn, hyperparameters: { learning_rate: 10, epochs: 10_000, batch_size: 100_000 } })).not.toThrow();
    expect(refusal({ ...churn, hyperparameters: { epochs: 10.5 } })).toBe('trainer "churn": hyperparameter "epochs" is 10.5; use an integer from 1 to 10000');
    expect(refusal({ ...churn, hyperparameters: { epochs: 0 } })).toContain('hyperparameter "epochs" is 0; use an integer from 1 to 10000');
    expect(refusal({ ...churn, hyperparameters: { epochs: 10_001 } })).toContain('hyperparameter "epochs" is 10001; use an integer from 1 to 10000');
    expect(refusal({ ...churn, hyperparameters: { batch_size: 0 } })).toContain('hyperparameter "batch_size" is 0; use an integer from 1 to 100000');
    expect(refusal({ ...churn, hyperparameters: { batch_size: 100_001 } })).toContain('hyperparameter "batch_size" is 100001; use an integer from 1 to 100000');
    expect(refusal({ ...churn, hyperparameters: { batch_size: '64' } })).toContain('hyperparameter "batch_size" is "64"');
    const network = { ...churn, algorithm: 'neural_network' };
    expect(() => checkSpec({ ...network, hyperparameters: { hidden_units: 1 } })).not.toThrow();
    expect(() => checkSpec({ ...network, hyperparameters: { hidden_units: 1024 } })).not.toThrow();
    expect(refusal({ ...network, hyperparameters: { hidden_units: 0 } })).toBe('trainer "churn": hyperparameter "hidden_units" is 0; use an integer from 1 to 1024');
    expect(refusal({ ...network, hyperparameters: { hidden_units: 1025 } })).toContain('hyperparameter "hidden_units" is 1025; use an integer from 1 to 1024');
    expect(refusal({ ...network, hyperparameters: { hidden_units: 2.5 } })).toContain('hyperparameter "hidden_units" is 2.5');
  });

  it('checks that the task fits the algorithm and the target fits the task', () => {
    expect(refusal({ ...churn, algorithm: 'neural_network', task: 'regression' })).toContain('neural_network does classification');
    expect(refusal({ ...churn, task: 'regression' })).toBe('trainer "churn": "task" is "regression", but logistic_regression does classification; set "task": "classification" or choose another algorithm');
    expect(refusal({ ...churn, algorithm: 'svm' })).toContain('"algorithm" is "svm"; use one of logistic_regression, neural_network, linear_regression, kmeans');
    expect(refusal({ ...segments, target: 'spend' })).toContain('clustering has no target');
    const { target: _unused, ...noTarget } = churn;
    expect(refusal(noTarget)).toContain('classification needs a "target"');
    expect(refusal({ ...churn, target: 'age' })).toContain('the target "age" is also a feature');
  });

  it('checks the features', () => {
    expect(refusal({ ...churn, features: [] })).toContain('"features" must list at least one feature column');
    expect(refusal({ ...churn, features: [{ name: 'a', kind: 'number' }, { name: 'a', kind: 'boolean' }] })).toContain('feature "a" is listed twice');
    expect(refusal({ ...churn, features: [{ name: 'plan', kind: 'category', categories: [] }] })).toContain('feature "plan" is a category without "categories"');
    expect(refusal({ ...churn, features: [{ name: 'e', kind: 'vector', dim: 0 }] })).toContain('feature "e" is a vector without a "dim"');
    expect(refusal({ ...churn, features: [{ name: 'd', kind: 'date' }] })).toContain('feature "d" has kind "date"');
  });

  it('checks the validation and the seed', () => {
    expect(refusal({ ...churn, validation: { holdout: 0.6 } })).toContain('"validation.holdout" is 0.6; use {"holdout": fraction} (above 0, at most 0.5) or {"folds": n} (2 to 20)');
    expect(refusal({ ...churn, validation: { folds: 21 } })).toContain('"validation.folds" is 21');
    expect(refusal({ ...churn, validation: { holdout: 0.2, folds: 3 } })).toContain('"validation" is {"holdout":0.2,"folds":3}');
    expect(refusal({ ...churn, seed: -1 })).toContain('"seed" is -1; use an integer from 0 to 4294967295');
    expect(refusal({ ...churn, trainer: '' })).toBe('trainer "(unnamed)": the spec has no "trainer" name');
  });
});
