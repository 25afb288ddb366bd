import type { Backend, RowFailure } from '../backends/backend.js';
import { describeError, errorFields, isListenerChanged, isTransientDatabaseError } from '../errors.js';
import { displayIdent } from '../identifiers.js';
import type { Logger } from '../logger.js';
import type { ModelCache } from '../models/registry.js';
import type { LoadedModel } from '../models/types.js';
import { jsonKey, type ClaimedRow, type InFlight, type ListenerInfo } from './listener-info.js';
import type { BatchObserver } from './metrics.js';
import { predictIsolatingFailures } from './predict.js';

/** How often, at most, a sidecar computing a backfill range says how far it is. */
const PROGRESS_EVERY_MS = 1000;

export interface BatchOutcome {
  /** Rows (or empty ranges) claimed; 0 means the listener had nothing claimable. */
  claimed: number;
  written: number;
  failed: number;
  source: 'queue' | 'backfill' | 'none';
}

export interface BatchContext {
  backend: Backend;
  models: ModelCache;
  sidecarId: string;
  logger: Logger;
  /** Called with claimed work and again when it is done, so the sidecar can extend its lease. */
  onClaim?(claim: InFlight, done: boolean): void;
  /** Told each step's rows and seconds (the sidecar's metrics), if anyone listens. */
  observer?: BatchObserver;
}

/**
 * One unit of work for one listener: claim (queued changes first, else a
 * backfill range), compute, write. Three short transactions; none is open while
 * the model runs.
 */
export async function runBatch(context: BatchContext, listener: ListenerInfo): Promise<BatchOutcome> {
  const claimStarted = performance.now();
  const { rows, source } = await context.backend.queue.claim(context.sidecarId, listener);
  context.observer?.claimed(listener, rows.length, (performance.now() - claimStarted) / 1000);
  if (rows.length === 0) return { claimed: 0, written: 0, failed: 0, source: 'none' };

  const inFlight: InFlight = {
    listener,
    ackPks: [],
    ackIds: [],
    chunk: source === 'backfill' ? (rows[0]?.sd_chunk ?? null) : null,
    claimedAt: Date.now(),
  };
  for (const row of rows) {
    for (const id of row.sd_ids ?? []) {
      inFlight.ackPks.push(row.sd_pk!);
      inFlight.ackIds.push(id);
    }
  }
  context.onClaim?.(inFlight, false);
  try {
    return { ...(await computeAndWrite(context, listener, rows, inFlight)), claimed: rows.length, source };
  } finally {
    context.onClaim?.(inFlight, true);
  }
}

/**
 * The rows are kept in parallel arrays (keys per column, inputs, outputs): a
 * backfill range is a thousand rows, and an object per row per step is where
 * the garbage collector's time went.
 */
async function computeAndWrite(
  context: BatchContext,
  listener: ListenerInfo,
  rows: ClaimedRow[],
  claim: InFlight,
): Promise<{ written: number; failed: number }> {
  const gone: string[] = [];
  const failures: RowFailure[] = [];
  const live: ClaimedRow[] = [];
  const empty: ClaimedRow[] = [];
  const inputs: unknown[] = [];
  const singleKey = listener.keys.length === 1;
  for (const row of rows) {
    if (row.p1 === null || row.p1 === undefined) continue; // an emptied backfill range
    if (row.sd_live === false) {
      gone.push(jsonKey(listener, row));
      continue;
    }
    const problem = keyProblem(listener, row);
    if (problem && listener.output.flatten) {
      // A NULL or empty document has no chunks (no elements): its list is empty.
      empty.push(row);
      continue;
    }
    if (problem) {
      failures.push({ key: jsonKey(listener, row), stamp: row.sd_stamp, error: problem, permanent: true });
      continue;
    }
    live.push(row);
    inputs.push(singleKey ? row.k1 : Object.fromEntries(listener.keys.map((key, i) => [key, row[`k${i + 1}`]])));
  }

  // Compute, in model batches of batch_size.
  const outputs: unknown[] = new Array(live.length);
  const ok = new Uint8Array(live.length);
  if (live.length > 0) {
    let model: LoadedModel | undefined;
    try {
      model = await context.models.get({
        name: listener.model,
        runtime: listener.runtime,
        output: listener.output,
        config: listener.model_config,
        artifact: listener.model_artifact,
        spec_hash: listener.model_hash,
      });
    } catch (error) {
      const message = `could not load model "${listener.model}": ${describeError(error)}`;
      for (const row of live) failures.push({ key: jsonKey(listener, row), stamp: row.sd_stamp, error: message, permanent: false });
    }
    if (model) {
      const size = listener.settings.batch_size;
      // A backfill range is written once, when complete: with a slow model
      // the sidecar says how far it is, at most once a second (a fast model
      // finishes the range before the first word is due, and says nothing).
      let lastWord = Date.now();
      for (let start = 0; start < live.length; start += size) {
        if (claim.chunk !== null && start > 0 && Date.now() - lastWord >= PROGRESS_EVERY_MS) {
          lastWord = Date.now();
          await context.backend.queue.progress(context.sidecarId, listener, claim.chunk, start).catch((error: unknown) => {
            context.logger.debug(errorFields(error), 'could not report a backfill range\'s progress');
          });
        }
        const predictStarted = performance.now();
        const results = await predictIsolatingFailures(model, listener, inputs.slice(start, start + size));
        context.observer?.predicted(listener, Math.min(size, live.length - start), (performance.now() - predictStarted) / 1000);
        results.forEach((result, i) => {
          if (result.ok) {
            outputs[start + i] = result.value;
            ok[start + i] = 1;
          } else {
            const row = live[start + i]!;
            failures.push({ key: jsonKey(listener, row), stamp: row.sd_stamp, error: result.error, permanent: false });
          }
        });
      }
    }
  }

  // What to write: the rows that computed (usually all of them).
  let written = live;
  let writtenOutputs = outputs;
  if (ok.some((flag) => flag === 0)) {
    written = live.filter((_, i) => ok[i] === 1);
    writtenOutputs = outputs.filter((_, i) => ok[i] === 1);
  }
  if (empty.length > 0) {
    written = [...written, ...empty];
    writtenOutputs = [...writtenOutputs, ...empty.map(() => [])];
  }
  // Failed rows are not acknowledged by the write: _fail turns their queue
  // entries into a retry (or a failure record).
  let ackPks = claim.ackPks;
  let ackIds = claim.ackIds;
  if (failures.length > 0 && ackPks.length > 0) {
    const failed = new Set(failures.map((f) => f.key));
    const keep = ackPks.map((pk) => !failed.has(pk));
    ackPks = ackPks.filter((_, i) => keep[i]);
    ackIds = ackIds.filter((_, i) => keep[i]);
  }

  const { backend, sidecarId } = context;
  const batch = { gone, ackPks, ackIds, claimedPks: claim.ackPks, claimedIds: claim.ackIds, chunk: claim.chunk };
  let writtenCount = 0;
  const writeStarted = performance.now();
  try {
    writtenCount = await backend.queue.write(sidecarId, listener, { ...batch, rows: written, outputs: writtenOutputs }, failures);
  } catch (error) {
    if (isTransientDatabaseError(error) || isListenerChanged(error)) throw error;
    // The batch could not be written (say, a constraint on the outputs table):
    // each row becomes a failure rather than being retried forever.
    const message = `could not write outputs: ${describeError(error)}`;
    for (const row of written) failures.push({ key: jsonKey(listener, row), stamp: row.sd_stamp, error: message, permanent: false });
    const unwritten = new Set(written.map((row) => jsonKey(listener, row)));
    const keep = ackPks.map((pk) => !unwritten.has(pk));
    await backend.queue.write(
      sidecarId,
      listener,
      { ...batch, ackPks: ackPks.filter((_, i) => keep[i]), ackIds: ackIds.filter((_, i) => keep[i]), rows: [], outputs: [] },
      failures,
    );
    writtenCount = 0;
  }

  context.observer?.wrote(listener, writtenCount, failures.length, (performance.now() - writeStarted) / 1000);
  if (failures.length > 0) {
    context.logger.warn({ listener: listener.name, failed: failures.length, error: failures[0]!.error }, 'rows failed');
  }
  return { written: writtenCount, failed: failures.length };
}

/** NULL (or empty text) key values cannot be computed: say which column of which row. */
function keyProblem(listener: ListenerInfo, row: ClaimedRow): string | undefined {
  const isEmpty = (value: unknown) => value === null || value === undefined || value === '';
  for (let i = 0; i < listener.keys.length; i++) if (!isEmpty(row[`k${i + 1}`])) return undefined;
  const values = listener.keys.map((_, i) => row[`k${i + 1}`]);
  const which = listener.keys.length === 1 ? `key column ${displayIdent(listener.keys[0]!)} is` : `key columns ${listener.keys.map(displayIdent).join(', ')} are`;
  const what = values.every((v) => v === null || v === undefined) ? 'NULL' : 'empty';
  return `row ${jsonKey(listener, row)}: ${which} ${what}; listener "${listener.name}" has nothing to compute (set a value, or exclude such rows with a filter)`;
}
