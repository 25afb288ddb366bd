import type { Database, Queryable } from '../backends/postgres/sql-driver.js';
import { describeError, isTransientDatabaseError } from '../errors.js';
import { displayIdent } from '../identifiers.js';
import type { Logger } from '../logger.js';
import type { ModelCache } from '../models/registry.js';
import type { LoadedModel } from '../models/types.js';
import { codeGone, jsonKey, listenerFunction, type ClaimedRow, type InFlight, type ListenerInfo } from './listener-info.js';
import { predictIsolatingFailures } from './predict.js';

export interface BatchOutcome {
  /** Rows (or empty ranges) claimed; 0 means the listener had nothing claimable. */
  claimed: number;
  written: number;
  failed: number;
  source: 'queue' | 'backfill' | 'none';
}

export interface BatchContext {
  db: Database;
  models: ModelCache;
  workerId: string;
  logger: Logger;
  /** Called with claimed work and again when it is done, so the sidecar can extend its lease. */
  onClaim?(claim: InFlight, done: boolean): void;
}

interface Failure {
  key: string;
  /** The stamp the failed value was read under (see the claim template). */
  stamp: string | null;
  error: string;
  /** No retry can fix it (a NULL key value): straight to the failures. */
  permanent: boolean;
}

/**
 * One unit of work for one listener: claim (queued changes first, else a
 * backfill range), compute, write. Three short transactions; none is open while
 * the model runs.
 */
export async function runBatch(context: BatchContext, listener: ListenerInfo): Promise<BatchOutcome> {
  const { db, workerId } = context;
  const lease = listener.settings.lease_seconds;
  let source: BatchOutcome['source'] = 'queue';
  let rows = (
    await againIfReplaced(() =>
      db.query<ClaimedRow>(`SELECT * FROM ${listenerFunction(listener.id, 'claim')}($1, $2, make_interval(secs => $3))`, [
        workerId,
        listener.settings.batch_size,
        lease,
      ]),
    )
  ).rows;
  if (rows.length === 0) {
    source = 'backfill';
    rows = (
      await againIfReplaced(() =>
        db.query<ClaimedRow>(`SELECT * FROM ${listenerFunction(listener.id, 'claim_chunk')}($1, make_interval(secs => $2), $3)`, [
          workerId,
          lease,
          listener.settings.chunk_size,
        ]),
      )
    ).rows;
  }
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
  const failures: Failure[] = [];
  const live: ClaimedRow[] = [];
  const inputs: unknown[] = [];
  const singleKey = listener.keys.length === 1;
  for (const row of rows) {
    if (row.p1 === null || row.p1 === undefined) continue; // an emptied backfill range
    if (row.sd_live === false) {
      gone.push(jsonKey(listener, row));
      continue;
    }
    const problem = keyProblem(listener, row);
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
      for (let start = 0; start < live.length; start += size) {
        const results = await predictIsolatingFailures(model, listener, inputs.slice(start, start + size));
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

  const { db } = context;
  const write = (q: Queryable, rowsToWrite: ClaimedRow[], outputsToWrite: unknown[], withdraw: Withdrawal[]) =>
    writeOutputs(q, db, listener, { rows: rowsToWrite, outputs: outputsToWrite, gone, ackPks, ackIds, chunk: claim.chunk, withdraw });

  let writtenCount = 0;
  try {
    writtenCount = await againIfReplaced(() =>
      failures.length === 0
        ? write(db, written, writtenOutputs, [])
        : // Failures and outputs commit together: a backfill range is never done
          // while its failed rows are not yet queued for a retry, and an output
          // of an earlier value goes with its row's move to the failures.
          db.transaction(async (tx) => {
            const withdraw = await recordFailures(tx, listener, failures, claim);
            return write(tx, written, writtenOutputs, withdraw);
          }),
    );
  } catch (error) {
    if (isTransientDatabaseError(error) || codeGone(error)) throw error;
    // The batch could not be written (say, a constraint on the outputs table):
    // each row becomes a failure rather than being retried forever.
    const message = `could not write outputs: ${describeError(error)}`;
    for (const row of written) failures.push({ key: jsonKey(listener, row), stamp: row.sd_stamp, error: message, permanent: false });
    const unwritten = new Set(written.map((row) => jsonKey(listener, row)));
    const keep = ackPks.map((pk) => !unwritten.has(pk));
    ackPks = ackPks.filter((_, i) => keep[i]);
    ackIds = ackIds.filter((_, i) => keep[i]);
    await db.transaction(async (tx) => {
      const withdraw = await recordFailures(tx, listener, failures, claim);
      await writeOutputs(tx, db, listener, { rows: [], outputs: [], gone, ackPks, ackIds, chunk: claim.chunk, withdraw });
    });
    writtenCount = 0;
  }

  if (failures.length > 0) {
    context.logger.warn({ listener: listener.name, failed: failures.length, error: failures[0]!.error }, 'rows failed');
  }
  return { written: writtenCount, failed: failures.length };
}

/**
 * A claim or write that waited while its listener's code was replaced (a filter
 * changed, a version promoted: superduper._lock_listeners) raises SDR01 rather
 * than run the old code. The same call made again reaches the new code (or
 * undefined_function, when the listener is gone).
 */
async function againIfReplaced<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if ((error as { code?: string }).code !== 'SDR01' || attempt === 3) throw error;
    }
  }
}

/** A row moved to the failures, whose output from an earlier value goes (see the write template). */
interface Withdrawal {
  pk: string;
  stamp: string;
}

async function writeOutputs(
  q: Queryable,
  db: Database,
  listener: ListenerInfo,
  batch: {
    rows: ClaimedRow[];
    outputs: unknown[];
    gone: string[];
    ackPks: string[];
    ackIds: string[];
    chunk: number | null;
    withdraw: Withdrawal[];
  },
): Promise<number> {
  const pkCount = listener.pk.length;
  const pkParams = listener.pk.map((_, i) => `$${i + 1}::text[]`).join(', ');
  const at = (n: number) => `$${pkCount + n}`;
  const sql =
    `SELECT ${listenerFunction(listener.id, 'write')}(${pkParams}, ${at(1)}, ${at(2)}::bigint[], ${at(3)}::text[], ` +
    `${at(4)}::text[], ${at(5)}::bigint[], ${at(6)}::integer, ${at(7)}::text[], ${at(8)}::bigint[]) AS written`;
  const stamped = batch.rows.some((row) => row.sd_stamp !== null);
  const result = await q.query<{ written: number }>(sql, [
    ...listener.pk.map((_, i) => batch.rows.map((row) => row[`p${i + 1}`])),
    listener.output.type === 'vector' ? db.vectorArrayParam(batch.outputs as ArrayLike<number>[]) : batch.outputs,
    // NULL when no row has a stamp (a backfill range with nothing queued): unnest
    // pads it with NULLs, and a thousand-element array of NULLs is not sent.
    stamped ? batch.rows.map((row) => row.sd_stamp) : null,
    batch.gone,
    batch.ackPks,
    batch.ackIds,
    batch.chunk,
    batch.withdraw.map((w) => w.pk),
    batch.withdraw.map((w) => w.stamp),
  ]);
  return result.rows[0]?.written ?? 0;
}

/** Records failures (superduper._fail); returns the rows that moved to the failures for good. */
async function recordFailures(q: Queryable, listener: ListenerInfo, failures: Failure[], claim: InFlight): Promise<Withdrawal[]> {
  const moved: Withdrawal[] = [];
  for (const permanent of [false, true]) {
    const list = failures.filter((f) => f.permanent === permanent);
    if (list.length === 0) continue;
    const keys = new Set(list.map((f) => f.key));
    const mine = claim.ackPks.flatMap((pk, i) => (keys.has(pk) ? [[pk, claim.ackIds[i]!] as const] : []));
    const result = await q.query<Withdrawal>('SELECT * FROM superduper._fail($1, $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7)', [
      listener.id,
      list.map((f) => f.key),
      list.map((f) => f.error),
      list.map((f) => f.stamp),
      mine.map(([pk]) => pk),
      mine.map(([, id]) => id),
      permanent,
    ]);
    moved.push(...result.rows);
  }
  return moved;
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
