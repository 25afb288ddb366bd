import { createHash } from 'node:crypto';
import type { LoadedModel, ModelRecord, ModelRuntime, OutputSpec } from './types.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- inputs are whatever the key columns hold
export type PredictFunction = (inputs: any[]) => unknown[] | Promise<unknown[]>;

/**
 * A model that is a TypeScript function. Its code stays in the process that
 * registered it: only that process's sidecar (`db.start()`) runs it, and other
 * sidecars leave its listeners alone. The registry keeps a hash of the source,
 * so changing the function's code is a new model version.
 */
export interface FunctionModel {
  readonly kind: 'model';
  readonly name: string;
  readonly runtime: 'function';
  readonly output: OutputSpec;
  readonly predict: PredictFunction;
  readonly spec: Record<string, unknown>;
  /** Registers the function with this process's sidecars (apply does it). */
  attach(functions: FunctionRuntime): void;
}

export function functionModel(options: { name: string; output: OutputSpec; predict: PredictFunction; version?: string }): FunctionModel {
  const source = options.version ?? createHash('sha256').update(options.predict.toString()).digest('hex');
  const model: FunctionModel = {
    kind: 'model',
    name: options.name,
    runtime: 'function',
    output: options.output,
    predict: options.predict,
    spec: { type: 'model', name: options.name, runtime: 'function', output: options.output, config: { source } },
    attach: (functions) => functions.register(model),
  };
  return model;
}

/** Runs the function models this process registered. */
export class FunctionRuntime implements ModelRuntime {
  readonly name = 'function';
  readonly #functions = new Map<string, PredictFunction>();

  register(model: FunctionModel): void {
    this.#functions.set(model.name, model.predict);
  }

  names(): string[] {
    return [...this.#functions.keys()];
  }

  async load(model: ModelRecord): Promise<LoadedModel> {
    const predict = this.#functions.get(model.name);
    if (!predict) {
      throw new Error(`function model "${model.name}" is not registered in this process`);
    }
    return { predict: async (inputs) => predict([...inputs]) };
  }
}
