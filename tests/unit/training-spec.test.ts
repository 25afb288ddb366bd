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
    expect(resolveHyperparameters(churn)).toEqual({ steps: 1000, learning_rate: 0.5 });
    expect(resolveHyperparameters(segments)).toEqual({ k: 3, max_iterations: 100 });
    expect(HYPERPARAMETER_DEFAULTS.linear_regression).toEqual({});
  });

  it('names the trainer, the hyperparameter and the allowed names', () => {
    expect(refusal({ ...churn, hyperparameters: { step: 10 } })).toBe('trainer "churn": hyperparameter "step" is not one of logistic_regression\'s: steps, learning_rate');
    expect(refusal({ ...churn, task: 'regression', algorithm: 'linear_regression', hyperparameters: { steps: 10 } })).toBe(
      'trainer "churn": hyperparameter "steps": linear_regression takes no hyperparameters; remove it',
    );
  });

  it('checks the ranges: k an integer of at least 2 and required, a positive learning rate, whole steps', () => {
    expect(refusal({ ...segments, hyperparameters: {} })).toBe('trainer "segments": kmeans needs the hyperparameter "k"');
    expect(refusal({ ...segments, hyperparameters: { k: 1 } })).toBe('trainer "segments": hyperparameter "k" is 1; use an integer of at least 2');
    expect(refusal({ ...segments, hyperparameters: { k: 2.5 } })).toContain('hyperparameter "k" is 2.5');
    expect(refusal({ ...churn, hyperparameters: { learning_rate: 0 } })).toBe('trainer "churn": hyperparameter "learning_rate" is 0; use a number above 0');
    expect(refusal({ ...churn, hyperparameters: { steps: 10.5 } })).toContain('hyperparameter "steps" is 10.5; use an integer of at least 1');
  });

  it('checks that the task fits the algorithm and the target fits the task', () => {
    expect(refusal({ ...churn, task: 'regression' })).toBe('trainer "churn": "task" is "regression", but logistic_regression does classification; set "task": "classification" or choose another algorithm');
    expect(refusal({ ...churn, algorithm: 'svm' })).toContain('"algorithm" is "svm"; use one of logistic_regression, linear_regression, kmeans');
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
