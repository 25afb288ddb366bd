/** fitInWorker and startFitWorker (src/training/fit-in-worker.ts): the same fit off the main thread, started ahead of its data, its errors across the boundary, its memory limit and its abort. */
import { describe, expect, it } from 'vitest';
import { encodeArtifact } from '../../src/training/artifact.js';
import type { EncodedData } from '../../src/training/encode.js';
import { TrainingError } from '../../src/training/errors.js';
import { fitInWorker, startFitWorker } from '../../src/training/fit-in-worker.js';
import { fit, mulberry32 } from '../../src/training/fit.js';
import type { TrainingSpec } from '../../src/training/types.js';

const spec: TrainingSpec = {
  trainer: 'churn',
  task: 'classification',
  algorithm: 'logistic_regression',
  features: [{ name: 'x', kind: 'number' }, { name: 'z', kind: 'number' }],
  target: 'label',
  hyperparameters: { epochs: 5, batch_size: 32 },
  seed: 4,
  validation: { folds: 3 },
};

/** rows × 2 random features and a label from their sum, as the encoder would give them. */
function dataset(rows: number): EncodedData {
  const next = mulberry32(rows);
  const x = Float64Array.from({ length: rows * 2 }, () => next() * 2 - 1);
  const y = Float64Array.from({ length: rows }, (_, i) => (x[2 * i]! + x[2 * i + 1]! + (next() - 0.5) * 0.2 > 0 ? 1 : 0));
  return { x, rows, width: 2, y, classes: ['no', 'yes'] };
}

function copy(data: EncodedData): EncodedData {
  return { ...data, x: data.x.slice(), y: data.y!.slice() };
}

describe('fitInWorker', () => {
  it.each(['logistic_regression', 'neural_network'] as const)('returns what fit() returns (%s, TensorFlow.js in the worker), and moves the rows to the worker rather than copying them', async (algorithm) => {
    const spec2: TrainingSpec = { ...spec, algorithm };
    const data = dataset(300);
    const local = await fit(spec2, copy(data));
    const inWorker = await fitInWorker(spec2, data, { memoryMb: 256 });
    expect(Buffer.from(encodeArtifact(inWorker.artifact)).equals(Buffer.from(encodeArtifact(local.artifact)))).toBe(true);
    expect(inWorker.metrics).toEqual(local.metrics);
    expect([inWorker.trainedRows, inWorker.heldOutRows]).toEqual([300, 300]);
    expect(data.x.length).toBe(0); // transferred: this thread's view is detached
  });

  it('fits the same when started ahead of its data (loading while the rows are read), once only, and can be ended unused', async () => {
    const data = dataset(200);
    const local = await fit(spec, copy(data));
    const worker = startFitWorker({ memoryMb: 256 });
    await new Promise((resolve) => setTimeout(resolve, 500)); // the rows being read meanwhile
    const fitted = await worker.fit(spec, data);
    expect(Buffer.from(encodeArtifact(fitted.artifact)).equals(Buffer.from(encodeArtifact(local.artifact)))).toBe(true);
    await expect(worker.fit(spec, dataset(200))).rejects.toThrow('fits once');
    worker.terminate(); // ended by itself already: harmless
    const unused = startFitWorker({ memoryMb: 256 });
    unused.terminate(); // a run whose read failed
    const aborted = new AbortController();
    const late = startFitWorker({ memoryMb: 256, signal: aborted.signal });
    aborted.abort(new Error('the sidecar is stopping'));
    await expect(late.fit(spec, dataset(50))).rejects.toThrow('the sidecar is stopping');
  });

  it('rejects with a TrainingError of the same message when the fit refuses the data', async () => {
    const error = await fitInWorker({ ...spec, validation: { folds: 20 } }, dataset(5), { memoryMb: 256 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingError);
    expect((error as TrainingError).message).toBe('trainer "churn": 20 folds need at least 20 rows, and the query returned 5; use fewer folds or more rows');
    expect((error as TrainingError).trainer).toBe('churn');
  });

  it('names the memory setting when the fit outgrows the limit (and the same limit fits a small dataset)', async () => {
    const linear: TrainingSpec = { ...spec, task: 'regression', algorithm: 'linear_regression', hyperparameters: {}, validation: { holdout: 0.2 } };
    const small = dataset(1000);
    await expect(fitInWorker(linear, { ...small, classes: undefined }, { memoryMb: 32 })).resolves.toHaveProperty('trainedRows', 800);
    const large = dataset(400_000);
    const error = await fitInWorker(linear, { ...large, classes: undefined }, { memoryMb: 32 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingError);
    expect((error as Error).message).toBe(
      'trainer "churn": the fit ran out of the training memory limit of 32 MB (SUPERDUPER_TRAINING_MEMORY_MB); raise it or narrow the training query',
    );
  });

  it('ends the worker when the signal aborts, rejecting with its reason', async () => {
    const controller = new AbortController();
    const long = fitInWorker({ ...spec, hyperparameters: { epochs: 10_000, batch_size: 1 } }, dataset(2000), { memoryMb: 256, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('the sidecar is stopping')), 100);
    await expect(long).rejects.toThrow('the sidecar is stopping');
    const before = new AbortController();
    before.abort(new Error('stopped already'));
    await expect(fitInWorker(spec, dataset(10), { memoryMb: 256, signal: before.signal })).rejects.toThrow('stopped already');
  });
});
