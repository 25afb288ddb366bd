import type { Logger } from '../logger.js';
import { FunctionRuntime } from './function-runtime.js';
import { builtinRuntimes } from './runtimes.js';
import type { LoadedModel, ModelRecord, ModelRuntime, RuntimeContext } from './types.js';

/**
 * Loads each model once per process (per version of its spec) and keeps it:
 * a batch never pays for loading, and every listener on a model shares it.
 */
export class ModelCache {
  readonly functions = new FunctionRuntime();
  /** Every load this process made, in order: how often and how long (for status and benchmarks). */
  readonly loads: Array<{ model: string; runtime: string; ms: number }> = [];
  readonly #runtimes = new Map<string, ModelRuntime>();
  readonly #loaded = new Map<string, Promise<LoadedModel>>();

  constructor(
    private readonly context: RuntimeContext,
    private readonly logger?: Logger,
  ) {
    for (const runtime of [this.functions, ...builtinRuntimes()]) this.addRuntime(runtime);
  }

  addRuntime(runtime: ModelRuntime): void {
    this.#runtimes.set(runtime.name, runtime);
  }

  get(model: ModelRecord): Promise<LoadedModel> {
    const key = `${model.name}\u0000${model.spec_hash}`;
    let loaded = this.#loaded.get(key);
    if (!loaded) {
      const runtime = this.#runtimes.get(model.runtime);
      if (!runtime) return Promise.reject(new Error(`no runtime "${model.runtime}" in this sidecar (model "${model.name}")`));
      const started = performance.now();
      loaded = runtime.load(model, this.context).then((result) => {
        const ms = Math.round(performance.now() - started);
        this.loads.push({ model: model.name, runtime: model.runtime, ms });
        this.logger?.info({ model: model.name, runtime: model.runtime, ms }, 'model loaded');
        return result;
      });
      // A failed load is retried on the next batch rather than cached forever.
      loaded.catch(() => this.#loaded.delete(key));
      this.#loaded.set(key, loaded);
    }
    return loaded;
  }

  async close(): Promise<void> {
    const models = await Promise.allSettled(this.#loaded.values());
    this.#loaded.clear();
    await Promise.all(models.map((m) => (m.status === 'fulfilled' ? m.value.close?.() : undefined)));
  }
}
