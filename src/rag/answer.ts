import type { Backend, RagStore } from '../backends/backend.js';
import { coerceError, errorFields, SuperduperError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelCache } from '../models/registry.js';
import type { ModelRecord } from '../models/types.js';
import { TextStream } from './text-stream.js';
import type { RagAnswer, RagOptions, RagResult } from './types.js';

/**
 * db.rag(): superduper.rag() with the LLM run in this process, so that its
 * answer can be read as it is written. The database gives the prompt, the
 * sources and the cache (the same functions superduper.rag() uses); the model
 * is loaded from its stored spec like a sidecar loads it, and streams where
 * its runtime can. Only a complete answer is cached.
 */
export async function askRag(backend: Backend, models: ModelCache, logger: Logger, index: string, question: string, options: RagOptions): Promise<RagAnswer> {
  const rag = backend.rag;
  if (!rag) {
    throw new SuperduperError(`db.rag(): the ${backend.name} backend has no retrieval-augmented generation`, {
      code: 'unsupported',
      hint: 'RAG needs chunks as rows, full-text search and the answer cache, which the PostgreSQL backends have (docs/rag.md). Here, search with db.search() and give the passages to your LLM yourself.',
    });
  }
  const llm = options?.llm;
  if (typeof llm !== 'string' || llm === '') {
    throw new SuperduperError('db.rag(): options.llm must name the LLM model, e.g. { llm: "llm" }');
  }
  const { signal } = options;
  const aborted = (pieces: number) =>
    new SuperduperError(`db.rag("${index}"): model "${llm}": the answer was aborted${pieces > 0 ? ` after ${pieces} pieces` : ''}; nothing was cached`, {
      code: 'aborted',
      cause: signal?.reason,
    });
  if (signal?.aborted) throw aborted(0);

  const record = await rag.llm(llm);
  const context = await rag.context(index, question, llm, options);
  if (signal?.aborted) throw aborted(0);

  const tokens = new TextStream();
  if (context.cached !== null) {
    tokens.push(context.cached);
    tokens.end();
  } else {
    void answer({ backend, models, logger, rag, record, prompt: context.prompt, signal, tokens, index, aborted });
  }
  const result: Promise<RagResult> = tokens.text.then((text) => ({
    answer: text,
    // As superduper.rag() marks them: the answer names [n].
    sources: context.sources.map((source) => ({ ...source, cited: text.includes(`[${source.n}]`) })),
    cached: context.cached !== null,
  }));
  result.catch(() => {}); // rejects with `answer`: unhandled only if neither is awaited
  return {
    prompt: context.prompt,
    sources: context.sources,
    cached: context.cached !== null,
    tokens,
    answer: tokens.text,
    result,
    [Symbol.asyncIterator]: () => tokens[Symbol.asyncIterator](),
  };
}

interface Answering {
  backend: Backend;
  models: ModelCache;
  logger: Logger;
  rag: RagStore;
  record: ModelRecord;
  prompt: string;
  signal: AbortSignal | undefined;
  tokens: TextStream;
  index: string;
  aborted: (pieces: number) => SuperduperError;
}

/** Runs the LLM into `tokens`, then caches the answer; a failure fails `tokens` and caches nothing. */
async function answer(a: Answering): Promise<void> {
  const { record, tokens, signal } = a;
  try {
    if (local(a.models, record)) {
      const loaded = await a.models.get(record);
      if (loaded.stream) {
        for await (const piece of loaded.stream(a.prompt, signal)) {
          if (signal?.aborted) break;
          tokens.push(piece);
        }
      } else {
        tokens.push(answerText(await abortable(loaded.predict([a.prompt]).then((outputs) => outputs[0]), signal)));
      }
    } else {
      // A function model registered in another process (or a runtime this one
      // lacks): a sidecar that has it answers, in one piece.
      tokens.push(answerText(await abortable(a.backend.modelCalls.predict(record.name, a.prompt), signal)));
    }
    if (signal?.aborted) throw a.aborted(tokens.pieces);
  } catch (error) {
    tokens.fail(signal?.aborted ? a.aborted(tokens.pieces) : named(a.index, record.name, error));
    return;
  }
  // Stored before the reader sees the end, so that superduper.rag() asked
  // right after finds it. A failed store costs a cache entry, not the answer.
  try {
    await a.rag.store(record.name, a.prompt, tokens.sofar, record.spec_hash);
  } catch (error) {
    a.logger.warn({ model: record.name, index: a.index, ...errorFields(error) }, 'db.rag(): could not cache the answer');
  }
  tokens.end();
}

/** Whether this process can run the model itself. */
function local(models: ModelCache, record: ModelRecord): boolean {
  if (record.runtime === 'function') return models.functions.names().includes(record.name);
  return models.runtimeNames().includes(record.runtime);
}

/** The answer as superduper.rag() makes it of a model's output: a string as it is, anything else as JSON. */
function answerText(output: unknown): string {
  return typeof output === 'string' ? output : (JSON.stringify(output) ?? '');
}

/** A call that cannot be cancelled, no longer waited for once the signal aborts. */
function abortable<T>(call: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return call;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    call.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Errors say which call failed and which model, once. */
function named(index: string, llm: string, thrown: unknown): SuperduperError {
  const error = coerceError(thrown) as Error & { code?: string; hint?: string };
  const model = error.message.includes(`model "${llm}"`) ? '' : `model "${llm}": `;
  return new SuperduperError(`db.rag("${index}"): ${model}${error.message}`, { code: error.code, hint: error.hint, cause: error });
}
