import { errorFields } from '../errors.js';
import type { Logger } from '../logger.js';
import { FunctionRuntime } from './function-runtime.js';
import { builtinRuntimes } from './runtimes.js';
import type { LoadedModel, ModelRecord, ModelRuntime, RuntimeContext } from './types.js';

/** A loaded version of a model, and the predictions running on it now. */
interface Entry {
  name: string;
  loaded: Promise<LoadedModel>;
  inFlight: number;
  /** A newer version of the model was loaded: close this one once it is idle. */
  retired: boolean;
}

/** How many loads and retirements a ModelCache remembers: a sidecar lives for months. */
const HISTORY = 100;

function remember<T>(history: T[], item: T): void {
  history.push(item);
  if (history.length > HISTORY) history.splice(0, history.length - HISTORY);
}

/**
 * Loads each model once per process (per version of its spec) and keeps it:
 * a batch never pays for loading, and every listener on a model shares it.
 * When a newer version of a model loads, the older one is closed as soon as no
 * prediction runs on it (a model re-applied many times would otherwise keep
 * every version in memory).
 */
export class ModelCache {
  readonly functions = new FunctionRuntime();
  /** The last loads this process made (at most HISTORY), in order: how often and how long (for status and benchmarks). */
  readonly loads: Array<{ model: string; runtime: string; ms: number }> = [];
  /** The last versions closed because a newer one loaded (at most HISTORY; for tests and status). */
  readonly retired: Array<{ model: string; specHash: string }> = [];
  readonly #runtimes = new Map<string, ModelRuntime>();
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly context: RuntimeContext,
    private readonly logger?: Logger,
  ) {
    for (const runtime of [this.functions, ...builtinRuntimes()]) this.addRuntime(runtime);
  }

  /** The runtimes this process can run models with. */
  runtimeNames(): string[] {
    return [...this.#runtimes.keys()];
  }

  addRuntime(runtime: ModelRuntime): void {
    this.#runtimes.set(runtime.name, runtime);
  }

  get(model: ModelRecord): Promise<LoadedModel> {
    const key = `${model.name}\u0000${model.spec_hash}`;
    let entry = this.#entries.get(key);
    if (!entry) {
      const runtime = this.#runtimes.get(model.runtime);
      if (!runtime) return Promise.reject(new Error(`no runtime "${model.runtime}" in this sidecar (model "${model.name}")`));
      const started = performance.now();
      const created: Entry = { name: model.name, loaded: undefined as never, inFlight: 0, retired: false };
      // Loaded once and wrapped once: each prediction is counted, so that a
      // retired version is closed only when none runs on it.
      created.loaded = runtime.load(model, this.context).then((result): LoadedModel => {
        const ms = Math.round(performance.now() - started);
        remember(this.loads, { model: model.name, runtime: model.runtime, ms });
        this.logger?.info({ model: model.name, runtime: model.runtime, ms }, 'model loaded');
        this.#retireOthers(model.name, key);
        const done = () => {
          created.inFlight--;
          if (created.retired && created.inFlight === 0) void this.#close(key, created);
        };
        const stream = result.stream?.bind(result);
        return {
          predict: (inputs) => {
            created.inFlight++;
            return result.predict(inputs).finally(done);
          },
          // A stream counts as a prediction from its first piece asked to its end.
          ...(stream
            ? {
                stream: async function* (input: unknown, signal?: AbortSignal) {
                  created.inFlight++;
                  try {
                    yield* stream(input, signal);
                  } finally {
                    done();
                  }
                },
              }
            : {}),
          close: result.close?.bind(result),
        };
      });
      // A failed load is retried on the next batch rather than cached forever.
      created.loaded.catch(() => {
        if (this.#entries.get(key) === created) this.#entries.delete(key);
      });
      this.#entries.set(key, created);
      entry = created;
    }
    return entry.loaded;
  }

  /** The other versions of a model: closed now if idle, else when their last prediction ends. */
  #retireOthers(name: string, keep: string): void {
    for (const [key, entry] of this.#entries) {
      if (key === keep || entry.name !== name || entry.retired) continue;
      entry.retired = true;
      if (entry.inFlight === 0) void this.#close(key, entry);
    }
  }

  async #close(key: string, entry: Entry): Promise<void> {
    if (this.#entries.get(key) !== entry) return;
    this.#entries.delete(key);
    remember(this.retired, { model: entry.name, specHash: key.split('\u0000')[1]! });
    try {
      await (await entry.loaded).close?.();
    } catch (error) {
      this.logger?.warn({ model: entry.name, ...errorFields(error) }, 'could not close an old model version');
    }
  }

  async close(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    const models = await Promise.allSettled(entries.map((entry) => entry.loaded));
    await Promise.all(models.map((m) => (m.status === 'fulfilled' ? m.value.close?.() : undefined)));
  }
}
