/**
 * fit() in a worker thread: the fit is synchronous CPU work of seconds to
 * minutes, and on the sidecar's own thread it would stop heartbeats and
 * request handling for as long. The rows' matrix is moved to the worker, not
 * copied, and the worker's heap is capped, so a fit too large for the limit
 * ends in a TrainingError naming the setting instead of taking the sidecar
 * down with it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { EncodedData } from './encode.js';
import { TrainingError } from './errors.js';
import type { FitResult } from './fit.js';
import type { TrainingSpec } from './types.js';
import type { WorkerReply, WorkerRequest } from './worker.js';

/** The file the bundles build from worker.ts (tsup.config.ts: entry "training-worker"), beside them in dist/. */
export const WORKER_BUNDLE = 'training-worker.js';

export interface FitInWorkerOptions {
  /** The worker's heap limit (maxOldGenerationSizeMb), from SUPERDUPER_TRAINING_MEMORY_MB. */
  memoryMb: number;
  /** Aborting ends the worker and rejects with the signal's reason (a sidecar that stops). */
  signal?: AbortSignal;
}

/** A worker thread started ahead of its fit, so that loading TensorFlow.js overlaps reading the rows. */
export interface FitWorker {
  /** Fits once. data.x and data.y are transferred: the caller's arrays are empty afterwards. */
  fit(spec: TrainingSpec, data: EncodedData): Promise<FitResult>;
  /** Ends the worker (a run that failed before its fit). */
  terminate(): void;
}

/**
 * Starts the worker at once: it loads the fitting libraries (a third of a
 * second for TensorFlow.js) and waits for its one request, while the caller
 * reads the rows.
 */
export function startFitWorker(options: FitInWorkerOptions): FitWorker {
  const { signal } = options;
  const { entry, options: entryOptions } = workerEntry();
  const worker = new Worker(entry, { ...entryOptions, resourceLimits: { maxOldGenerationSizeMb: options.memoryMb } });
  // Until fit() is called, an error or exit is kept for it to report.
  let early: Error | undefined;
  const keepEarly = (error: Error) => (early ??= error);
  worker.once('error', keepEarly);
  worker.once('exit', (code) => keepEarly(new Error(`the training worker exited (code ${code}) before it answered`)));
  let used = false;
  return {
    fit(spec, data) {
      if (used) return Promise.reject(new Error('a training worker fits once'));
      used = true;
      if (signal?.aborted) {
        void worker.terminate();
        return Promise.reject(signal.reason);
      }
      const outOfMemory = () =>
        new TrainingError(spec.trainer, `the fit ran out of the training memory limit of ${options.memoryMb} MB (SUPERDUPER_TRAINING_MEMORY_MB); raise it or narrow the training query`);
      if (early) return Promise.reject((early as Error & { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY' ? outOfMemory() : early);
      const request: WorkerRequest = { spec, data };
      const transfer = new Set<ArrayBuffer>();
      for (const array of [data.x, data.y]) if (array && array.buffer instanceof ArrayBuffer) transfer.add(array.buffer);
      return new Promise<FitResult>((resolve, reject) => {
        let settled = false;
        const settle = (outcome: () => void) => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          outcome();
        };
        const onAbort = () => {
          settle(() => reject(signal!.reason));
          void worker.terminate();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        worker.once('message', (reply: WorkerReply) => settle(() => (reply.ok ? resolve(reply.result) : reject(revive(reply.error)))));
        worker.once('error', (error: Error & { code?: string }) => settle(() => reject(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? outOfMemory() : error)));
        worker.once('exit', (code) => settle(() => reject(new Error(`the training worker exited (code ${code}) before it answered`))));
        worker.postMessage(request, [...transfer]);
      });
    },
    terminate() {
      void worker.terminate();
    },
  };
}

/** Runs fit(spec, data) in a worker thread of its own (startFitWorker, then its fit). */
export function fitInWorker(spec: TrainingSpec, data: EncodedData, options: FitInWorkerOptions): Promise<FitResult> {
  if (options.signal?.aborted) return Promise.reject(options.signal.reason);
  return startFitWorker(options).fit(spec, data);
}

function revive(error: Extract<WorkerReply, { ok: false }>['error']): Error {
  if (error.kind === 'training') return new TrainingError(error.trainer, error.detail);
  const revived = new Error(error.message);
  if (error.stack) revived.stack = error.stack;
  return revived;
}

/**
 * Where the worker's code is. In the bundles (dist/index.js, dist/index.cjs,
 * dist/cli.js and their chunks, all in dist/) it is dist/training-worker.js
 * beside them. Run from the TypeScript sources (vitest, tsx), it is worker.ts,
 * which plain Node cannot load: the worker first registers tsx's loader, in
 * its own thread, because Node 20 does not pass the parent's --import hooks
 * to workers (`execArgv: ['--import', 'tsx']` loads tsx there, but tsx only
 * registers itself on the main thread).
 */
function workerEntry(): { entry: string | URL; options: WorkerOptions } {
  // CommonJS (dist/index.cjs) and vitest define __filename; native ESM has import.meta.url.
  const here = typeof __filename === 'string' ? __filename : fileURLToPath(import.meta.url);
  if (!here.endsWith('.ts')) return { entry: join(dirname(here), WORKER_BUNDLE), options: {} };
  const source = pathToFileURL(join(dirname(here), 'worker.ts')).href;
  const tsx = tsxApi(here);
  return {
    entry: `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`,
    options: { eval: true },
  };
}

/** tsx's ESM API (tsx/esm/api, its "import" export), found from `from` as an import would find it. */
function tsxApi(from: string): string {
  const manifestPath = createRequire(from).resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { exports: Record<string, { import?: { default?: string } }> };
  const target = manifest.exports['./esm/api']?.import?.default;
  if (!target) throw new Error(`training: cannot find tsx's ESM API in ${manifestPath}, needed to run the worker from TypeScript sources`);
  return pathToFileURL(join(dirname(manifestPath), target)).href;
}
