import type { Component } from './component.js';

/** A feature: a column (numbers, booleans, vector(N)), a text column one-hot encoded, or a listener's outputs of the same rows. */
export type TrainerFeature = string | { column: string; encoding?: 'one_hot' } | { listener: string };

export interface TrainerOptions {
  name: string;
  /** The model it trains (default: the trainer's name); listeners and superduper.predict name it. */
  model?: string;
  /** The table or view whose rows it trains on (looked up in the search_path unless `schema` is given). */
  table: string;
  schema?: string;
  /** A boolean SQL expression over the table's columns: the rows it trains on. */
  filter?: string;
  features: TrainerFeature[];
  /** The column it learns to predict (not for clustering). */
  target?: string;
  task: 'classification' | 'regression' | 'clustering';
  /** classification: logistic_regression (default) or neural_network; regression: linear_regression; clustering: kmeans. */
  algorithm?: 'logistic_regression' | 'neural_network' | 'linear_regression' | 'kmeans';
  /** logistic_regression: epochs, learning_rate, batch_size; neural_network: those and hidden_units; kmeans: k (required), max_iterations. */
  hyperparameters?: Record<string, number>;
  /** Seeds the split and the fit: the same rows and seed give the same model (default 0). */
  seed?: number;
  /** How runs are scored: a held-out share of the rows (default { holdout: 0.2 }) or k folds. */
  validation?: { holdout: number } | { folds: number };
  /** Which run serves: best_score on `metric` (default), most_recent (not worse, unless gate is false), or pinned `run`. */
  deploy?: { strategy?: 'best_score' | 'most_recent' | 'pinned'; metric?: string; gate?: boolean; run?: number };
  /** Retrain by itself once this many rows of the table(s) it reads changed (a schedule's { train } retrains on a clock). */
  retrain?: { afterRows?: number };
}

/**
 * A trainer (sql/functions/047_trainers.sql): fits its model on the rows of a
 * table or view, each run a version with its artifact and metrics in the
 * database; its deploy strategy picks the run that serves.
 */
export function trainer(options: TrainerOptions): Component {
  const { name, model, table, schema, filter, features, target, task, algorithm, hyperparameters, seed, validation, deploy, retrain } = options;
  return {
    kind: 'trainer',
    name,
    spec: {
      type: 'trainer',
      name,
      table,
      features,
      task,
      ...(model !== undefined ? { model } : {}),
      ...(schema !== undefined ? { schema } : {}),
      ...(filter !== undefined ? { filter } : {}),
      ...(target !== undefined ? { target } : {}),
      ...(algorithm !== undefined ? { algorithm } : {}),
      ...(hyperparameters !== undefined ? { hyperparameters } : {}),
      ...(seed !== undefined ? { seed } : {}),
      ...(validation !== undefined ? { validation } : {}),
      ...(deploy !== undefined ? { deploy } : {}),
      ...(retrain?.afterRows !== undefined ? { retrain: { after_rows: retrain.afterRows } } : {}),
    },
  };
}
