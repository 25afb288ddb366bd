/**
 * The worker thread fit-in-worker.ts starts: it waits for its one request,
 * fits, posts the result (or the error) and ends. Built as its own file (dist/training-worker.js) so
 * that the sidecar's event loop keeps answering heartbeats while the fit
 * takes the CPU for seconds or minutes.
 */
import { parentPort } from 'node:worker_threads';
import type { EncodedData } from './encode.js';
import { TrainingError } from './errors.js';
import { fit, type FitResult } from './fit.js';
import type { TrainingSpec } from './types.js';

export interface WorkerRequest {
  spec: TrainingSpec;
  data: EncodedData;
}

/** A TrainingError travels as its parts, so the parent rebuilds the same class and message. */
export type WorkerReply =
  | { ok: true; result: FitResult }
  | { ok: false; error: { kind: 'training'; trainer: string; detail: string } | { kind: 'other'; message: string; stack?: string } };

// Loaded (with the fitting libraries) before the request comes: see startFitWorker.
parentPort!.once('message', async ({ spec, data }: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = { ok: true, result: await fit(spec, data) };
  } catch (error) {
    reply = {
      ok: false,
      error: error instanceof TrainingError
        ? { kind: 'training', trainer: error.trainer, detail: error.detail }
        : { kind: 'other', message: error instanceof Error ? error.message : String(error), ...(error instanceof Error && error.stack ? { stack: error.stack } : {}) },
    };
  }
  parentPort!.postMessage(reply);
  // Nothing else to do: end, rather than wait for the parent to terminate it.
  parentPort!.close();
});
