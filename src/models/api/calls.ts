import pLimit, { type LimitFunction } from 'p-limit';
import { coerceError } from '../../errors.js';

/**
 * How long the results of a failed batch are kept for the row-by-row pass that
 * follows it (worker/predict.ts runs it at once; the time is a bound on memory).
 */
const HELD_MS = 30_000;

type Held = { ok: true; value: unknown; until: number } | { ok: false; error: Error; until: number };

/**
 * Sends a batch of inputs to an API in chunks of `size` inputs per call, with at
 * most `concurrency` calls in flight for this model in this process (across every
 * listener batch and every SQL call using it: p-limit is per loaded model).
 *
 * When some chunks fail, the batch fails, and the worker then runs each row
 * alone to isolate the bad ones. For a paid API that would mean paying again for
 * every row that succeeded, and, when the API is down, retrying each row through
 * the whole retry schedule (a 64-row batch could hold a sidecar for many minutes).
 * So the outcome of each row of a failed batch is held, and the single-row calls
 * that follow get it back without a request. Only an error that is about the
 * input (code api_input: an HTTP 400, 413 or 422, or a row that is not text) on a
 * chunk of several rows is not held: those rows are sent again one by one, which
 * is how the bad one is found.
 */
export class ApiCalls {
  readonly #limit: LimitFunction;
  readonly #held = new Map<string, Held>();

  constructor(
    private readonly size: number,
    concurrency: number,
  ) {
    this.#limit = pLimit(concurrency);
  }

  async run<T>(inputs: readonly unknown[], call: (chunk: unknown[]) => Promise<T[]>): Promise<T[]> {
    if (inputs.length === 1) {
      const held = this.#take(inputs[0]);
      if (held) {
        if (!held.ok) throw held.error;
        return [held.value as T];
      }
    }
    const chunks: unknown[][] = [];
    for (let start = 0; start < inputs.length; start += this.size) chunks.push(inputs.slice(start, start + this.size));
    const settled = await Promise.allSettled(
      chunks.map((chunk) =>
        this.#limit(async () => {
          const outputs = await call(chunk);
          if (outputs.length !== chunk.length) throw new Error(`the API returned ${outputs.length} results for ${chunk.length} inputs`);
          return outputs;
        }),
      ),
    );
    const failed = settled.find((result) => result.status === 'rejected');
    if (!failed) return settled.flatMap((result) => (result as PromiseFulfilledResult<T[]>).value);
    if (inputs.length > 1) this.#hold(chunks, settled);
    throw coerceError(failed.reason);
  }

  /**
   * Waits for a place among this model's calls in flight and returns the
   * function that gives it back: a streamed answer holds one while it lasts.
   */
  slot(): Promise<() => void> {
    return new Promise((granted) => {
      void this.#limit(() => new Promise<void>((release) => granted(release)));
    });
  }

  #hold(chunks: unknown[][], settled: PromiseSettledResult<unknown[]>[]): void {
    const until = Date.now() + HELD_MS;
    for (const [key, held] of this.#held) if (held.until < Date.now()) this.#held.delete(key);
    chunks.forEach((chunk, i) => {
      const result = settled[i]!;
      if (result.status === 'fulfilled') {
        chunk.forEach((input, j) => this.#held.set(keyOf(input), { ok: true, value: result.value[j], until }));
      } else if (chunk.length === 1 || (result.reason as { code?: string })?.code !== 'api_input') {
        const error = coerceError(result.reason);
        for (const input of chunk) this.#held.set(keyOf(input), { ok: false, error, until });
      }
    });
  }

  /** A held outcome is used once: a later computation of the same input calls the API. */
  #take(input: unknown): Held | undefined {
    const key = keyOf(input);
    const held = this.#held.get(key);
    if (!held) return undefined;
    this.#held.delete(key);
    return held.until >= Date.now() ? held : undefined;
  }
}

function keyOf(input: unknown): string {
  return JSON.stringify(input) ?? String(input);
}
