/**
 * What a trainer fits (issue 16): the task, the algorithm and its
 * hyperparameters, how each feature column becomes numbers, and how the run
 * is validated. checkSpec() is the one place a spec is judged, so the SQL
 * side, the sidecar and the fit all refuse the same specs with the same words.
 */
import { TrainingError } from './errors.js';

export type Task = 'classification' | 'regression' | 'clustering';
export type Algorithm = 'logistic_regression' | 'neural_network' | 'linear_regression' | 'kmeans';

/**
 * How a feature column becomes numbers. number: a numeric value; boolean: 0/1;
 * category: one-hot over `categories` (text values; a value not in the list
 * encodes as all zeros); vector: `dim` numbers (a pgvector value arrives as a
 * string like "[1,2,3]" or as a number[]).
 */
export type FeatureLayout =
  | { name: string; kind: 'number' }
  | { name: string; kind: 'boolean' }
  | { name: string; kind: 'category'; categories: string[] }
  | { name: string; kind: 'vector'; dim: number };

export interface TrainingSpec {
  /** The trainer's name, for error messages: 'trainer "churn": ...'. */
  trainer: string;
  task: Task;
  algorithm: Algorithm;
  features: FeatureLayout[];
  /** The name of the target column (absent for clustering). */
  target?: string;
  hyperparameters: Record<string, number>;
  seed: number;
  validation: { holdout: number } | { folds: number };
}

/** The task each algorithm does; the first of a task is its default (the SQL side's _training_task). */
export const ALGORITHM_TASK: Readonly<Record<Algorithm, Task>> = {
  logistic_regression: 'classification',
  neural_network: 'classification',
  linear_regression: 'regression',
  kmeans: 'clustering',
};

interface HyperparameterRule {
  /** Absent: the hyperparameter is required. */
  default?: number;
  integer: boolean;
  min: number;
  /** Whether min itself is excluded (a learning rate of 0 learns nothing). */
  exclusive?: boolean;
  /** The largest value allowed (included); absent: no bound. */
  max?: number;
}

/**
 * The two classifiers (fitted with TensorFlow.js, network.ts) share their
 * schedule: `epochs` passes over the training rows in mini-batches of
 * `batch_size`, Adam at `learning_rate`. The defaults were measured on
 * bench/training-libraries.ts's data (8 features, a rule that is not linear,
 * 20 % held out by fit()'s split) against ml-logistic-regression as the
 * trainer used it (1,000 full-batch steps, at the optimum): at 100,000 rows
 * logistic regression scored the same (accuracy 0.7831 and ROC AUC 0.8523
 * against 0.7829 and 0.8526) in 4.5 s of fit instead of 106 s, the network
 * 0.963 and 0.997 in 9 s. Batches of 1,024
 * because tfjs's cost per batch dominates smaller ones (batches of 64: 3× the
 * time, and noisier at a rate of 0.05); 20 epochs because 50 scored no better
 * at 100,000 rows. A table too small for 20 epochs to make 500 steps gets
 * more (fit.ts, defaultEpochs). The bounds are the SQL side's
 * (sql/functions/047_trainers.sql, _training_hyperparameters). k-means has no
 * sensible default k, so it is required.
 */
const SCHEDULE = {
  epochs: { default: 20, integer: true, min: 1, max: 10_000 },
  learning_rate: { default: 0.05, integer: false, min: 0, exclusive: true, max: 10 },
  batch_size: { default: 1024, integer: true, min: 1, max: 100_000 },
} as const satisfies Record<string, HyperparameterRule>;

const HYPERPARAMETERS: Readonly<Record<Algorithm, Readonly<Record<string, HyperparameterRule>>>> = {
  logistic_regression: SCHEDULE,
  neural_network: { ...SCHEDULE, hidden_units: { default: 16, integer: true, min: 1, max: 1024 } },
  linear_regression: {},
  kmeans: {
    k: { integer: true, min: 2 },
    max_iterations: { default: 100, integer: true, min: 1 },
  },
};

/** The default of each optional hyperparameter, per algorithm. */
export const HYPERPARAMETER_DEFAULTS: Readonly<Record<Algorithm, Readonly<Record<string, number>>>> = {
  logistic_regression: defaultsOf('logistic_regression'),
  neural_network: defaultsOf('neural_network'),
  linear_regression: defaultsOf('linear_regression'),
  kmeans: defaultsOf('kmeans'),
};

/** The spec's hyperparameters with the defaults filled in (the spec is checked). */
export function resolveHyperparameters(spec: TrainingSpec): Record<string, number> {
  checkSpec(spec);
  return { ...HYPERPARAMETER_DEFAULTS[spec.algorithm], ...spec.hyperparameters };
}

/** Fractions and counts the validation accepts: past half held out, the model learns from less than it is judged on. */
export const HOLDOUT_MAX = 0.5;
export const FOLDS_MIN = 2;
export const FOLDS_MAX = 20;
/** The seed feeds 32-bit generators (the split's and ml-kmeans'). */
export const SEED_MAX = 2 ** 32 - 1;

/**
 * Throws a TrainingError naming the trainer and the field when the spec is not
 * one the fit can run. Takes `unknown` because specs arrive as JSON.
 */
export function checkSpec(spec: unknown): asserts spec is TrainingSpec {
  if (!isObject(spec)) throw new TrainingError('(unnamed)', 'the training spec is not an object');
  const trainer = typeof spec.trainer === 'string' && spec.trainer !== '' ? spec.trainer : '(unnamed)';
  const fail = (detail: string): never => {
    throw new TrainingError(trainer, detail);
  };
  if (trainer === '(unnamed)') fail('the spec has no "trainer" name');

  const algorithm = spec.algorithm;
  if (typeof algorithm !== 'string' || !(algorithm in ALGORITHM_TASK)) {
    fail(`"algorithm" is ${JSON.stringify(algorithm)}; use one of ${Object.keys(ALGORITHM_TASK).join(', ')}`);
  }
  const task = ALGORITHM_TASK[algorithm as Algorithm];
  if (spec.task !== task) {
    fail(`"task" is ${JSON.stringify(spec.task)}, but ${String(algorithm)} does ${task}; set "task": "${task}" or choose another algorithm`);
  }

  checkFeatures(spec.features, fail);
  const names = new Set((spec.features as FeatureLayout[]).map((feature) => feature.name));
  if (task === 'clustering') {
    if (spec.target !== undefined) fail('"target" is set, but clustering has no target; remove it');
  } else {
    if (typeof spec.target !== 'string' || spec.target === '') fail(`${task} needs a "target": the name of the column to predict`);
    if (names.has(spec.target as string)) fail(`the target "${String(spec.target)}" is also a feature; remove it from "features"`);
  }

  checkHyperparameters(algorithm as Algorithm, spec.hyperparameters, fail);

  if (!Number.isInteger(spec.seed) || (spec.seed as number) < 0 || (spec.seed as number) > SEED_MAX) {
    fail(`"seed" is ${JSON.stringify(spec.seed)}; use an integer from 0 to ${SEED_MAX}`);
  }
  checkValidation(spec.validation, fail);
}

function checkFeatures(features: unknown, fail: (detail: string) => never): void {
  if (!Array.isArray(features) || features.length === 0) fail('"features" must list at least one feature column');
  const seen = new Set<string>();
  for (const feature of features as unknown[]) {
    if (!isObject(feature) || typeof feature.name !== 'string' || feature.name === '') fail('each feature needs a "name" (its column)');
    const { name, kind } = feature as { name: string; kind: unknown };
    if (seen.has(name)) fail(`feature "${name}" is listed twice; list each column once`);
    seen.add(name);
    if (kind === 'number' || kind === 'boolean') continue;
    if (kind === 'category') {
      const categories = (feature as { categories?: unknown }).categories;
      if (!Array.isArray(categories) || categories.length === 0 || !categories.every((c) => typeof c === 'string')) {
        fail(`feature "${name}" is a category without "categories": list its values as text`);
      }
      if (new Set(categories as string[]).size !== (categories as string[]).length) fail(`feature "${name}" lists a category twice; list each value once`);
      continue;
    }
    if (kind === 'vector') {
      const dim = (feature as { dim?: unknown }).dim;
      if (!Number.isInteger(dim) || (dim as number) < 1) fail(`feature "${name}" is a vector without a "dim" (a positive integer: its length)`);
      continue;
    }
    fail(`feature "${name}" has kind ${JSON.stringify(kind)}; use number, boolean, category or vector`);
  }
}

function checkHyperparameters(algorithm: Algorithm, given: unknown, fail: (detail: string) => never): void {
  if (!isObject(given)) fail('"hyperparameters" must be an object (it may be empty: {})');
  const rules = HYPERPARAMETERS[algorithm];
  const allowed = Object.keys(rules);
  for (const [name, value] of Object.entries(given as Record<string, unknown>)) {
    const rule = rules[name];
    if (!rule) {
      fail(allowed.length === 0
        ? `hyperparameter "${name}": ${algorithm} takes no hyperparameters; remove it`
        : `hyperparameter "${name}" is not one of ${algorithm}'s: ${allowed.join(', ')}`);
    }
    const { integer, min, exclusive, max } = rule as HyperparameterRule;
    const bad = typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || (exclusive ? value <= min : value < min) || (max !== undefined && value > max);
    if (bad) fail(`hyperparameter "${name}" is ${JSON.stringify(value)}; use ${describeRange(rule as HyperparameterRule)}`);
  }
  for (const [name, rule] of Object.entries(rules)) {
    if (rule.default === undefined && !(name in (given as object))) fail(`${algorithm} needs the hyperparameter "${name}"`);
  }
}

/** "an integer from 1 to 10000", "a number above 0 and at most 10", "an integer of at least 2". */
function describeRange({ integer, min, exclusive, max }: HyperparameterRule): string {
  const kind = integer ? 'an integer' : 'a number';
  if (max === undefined) return `${kind} ${exclusive ? 'above' : 'of at least'} ${min}`;
  return exclusive ? `${kind} above ${min} and at most ${max}` : `${kind} from ${min} to ${max}`;
}

function checkValidation(validation: unknown, fail: (detail: string) => never): void {
  const keys = isObject(validation) ? Object.keys(validation) : [];
  const usage = `use {"holdout": fraction} (above 0, at most ${HOLDOUT_MAX}) or {"folds": n} (${FOLDS_MIN} to ${FOLDS_MAX})`;
  if (keys.length !== 1 || (keys[0] !== 'holdout' && keys[0] !== 'folds')) fail(`"validation" is ${JSON.stringify(validation)}; ${usage}`);
  const { holdout, folds } = validation as { holdout?: unknown; folds?: unknown };
  if (holdout !== undefined && !(typeof holdout === 'number' && holdout > 0 && holdout <= HOLDOUT_MAX)) {
    fail(`"validation.holdout" is ${JSON.stringify(holdout)}; ${usage}`);
  }
  if (folds !== undefined && !(Number.isInteger(folds) && (folds as number) >= FOLDS_MIN && (folds as number) <= FOLDS_MAX)) {
    fail(`"validation.folds" is ${JSON.stringify(folds)}; ${usage}`);
  }
}

function defaultsOf(algorithm: Algorithm): Record<string, number> {
  const defaults: Record<string, number> = {};
  for (const [name, rule] of Object.entries(HYPERPARAMETERS[algorithm])) if (rule.default !== undefined) defaults[name] = rule.default;
  return defaults;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
