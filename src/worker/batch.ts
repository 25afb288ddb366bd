import type { Database, Queryable } from '../backends/database.js';
import { describeError, isTransientDatabaseError } from '../errors.js';
import { displayIdent, quoteIdent } from '../identifiers.js';
import type { Logger } from '../logger.js';
import { checkOutput } from '../models/output-check.js';
import type { ModelCache } from '../models/registry.js';
import type { LoadedModel, OutputSpec } from '../models/types.js';

/** A listener version as a sidecar sees it (superduper._worker_listeners). */
export interface ListenerInfo {
  id: number;
  name: string;
  version: number;
  state: 'current' | 'building';
  model: string;
  runtime: string;
  model_hash: string;
  model_config: Record<string, unknown>;
  model_artifact: string | null;
  keys: string[];
  key_types: string[];
  output_type: string;
  output: OutputSpec;
  settings: {
    batch_size: number;
    chunk_size: number;
    max_attempts: number;
    lease_seconds: number;
  };
  has_work: boolean;
}

/** A row returned by a claim function: its key, its queue entries, its key values. */
interface ClaimedRow {
  sd_pk: string | null;
  sd_ids?: string[];
  sd_stamp: string | null;
  sd_live?: boolean;
  sd_chunk?: number;
  [key: `k${number}`]: unknown;
}

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
  /** Called with the claimed work, so the sidecar can extend its lease or hand it back. */
  onClaim?(claim: InFlight | undefined): void;
}

export interface InFlight {
  listener: ListenerInfo;
  ackPks: string[];
  ackIds: string[];
  chunk: number | null;
  claimedAt: number;
}

const fn = (listenerId: number, suffix: string) => `superduper.${quoteIdent(`_l${listenerId}_${suffix}`)}`;

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
    await db.query<ClaimedRow>(`SELECT * FROM ${fn(listener.id, 'claim')}($1, $2, make_interval(secs => $3))`, [
      workerId,
      listener.settings.batch_size,
      lease,
    ])
  ).rows;
  if (rows.length === 0) {
    source = 'backfill';
    rows = (await db.query<ClaimedRow>(`SELECT * FROM ${fn(listener.id, 'claim_chunk')}($1, make_interval(secs => $2))`, [workerId, lease]))
      .rows;
  }
  if (rows.length === 0) return { claimed: 0, written: 0, failed: 0, source: 'none' };

  const chunk = source === 'backfill' ? (rows[0]?.sd_chunk ?? null) : null;
  const ackPks: string[] = [];
  const ackIds: string[] = [];
  if (source === 'queue') {
    for (const row of rows) {
      for (const id of row.sd_ids ?? []) {
        ackPks.push(row.sd_pk as string);
        ackIds.push(id);
      }
    }
  }
  context.onClaim?.({ listener, ackPks, ackIds, chunk, claimedAt: Date.now() });
  try {
    return await computeAndWrite(context, listener, rows, { ackPks, ackIds, chunk, source });
  } finally {
    context.onClaim?.(undefined);
  }
}

async function computeAndWrite(
  context: BatchContext,
  listener: ListenerInfo,
  rows: ClaimedRow[],
  claim: { ackPks: string[]; ackIds: string[]; chunk: number | null; source: 'queue' | 'backfill' },
): Promise<BatchOutcome> {
  const gone: string[] = [];
  const todo: Array<{ pk: string; stamp: string | null; input: unknown }> = [];
  const invalid: Array<{ pk: string; error: string }> = [];
  for (const row of rows) {
    if (row.sd_pk === null) continue; // an emptied backfill range
    if (row.sd_live === false) {
      gone.push(row.sd_pk);
      continue;
    }
    const problem = keyProblem(listener, row);
    if (problem) invalid.push({ pk: row.sd_pk, error: problem });
    else todo.push({ pk: row.sd_pk, stamp: row.sd_stamp, input: modelInput(listener, row) });
  }

  const written: Array<{ pk: string; stamp: string | null; output: unknown }> = [];
  const failed: Array<{ pk: string; error: string }> = [];
  if (todo.length > 0) {
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
      for (const item of todo) failed.push({ pk: item.pk, error: message });
    }
    if (model) {
      for (let start = 0; start < todo.length; start += listener.settings.batch_size) {
        const slice = todo.slice(start, start + listener.settings.batch_size);
        const results = await predictIsolatingFailures(model, listener, slice.map((item) => item.input));
        results.forEach((result, i) => {
          const item = slice[i]!;
          if (result.ok) written.push({ pk: item.pk, stamp: item.stamp, output: result.value });
          else failed.push({ pk: item.pk, error: result.error });
        });
      }
    }
  }

  // Failed rows must not be acknowledged by the write: _fail collapses their
  // queue entries into a retry (or a failure record).
  const failedPks = new Set([...failed, ...invalid].map((f) => f.pk));
  const ackPks: string[] = [];
  const ackIds: string[] = [];
  claim.ackPks.forEach((pk, i) => {
    if (!failedPks.has(pk)) {
      ackPks.push(pk);
      ackIds.push(claim.ackIds[i]!);
    }
  });

  const { db } = context;
  const write = (q: Queryable) =>
    q.query<{ written: number }>(
      `SELECT ${fn(listener.id, 'write')}($1::text[], $2, $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::integer) AS written`,
      [
        written.map((w) => w.pk),
        outputsParam(db, listener.output, written.map((w) => w.output)),
        written.map((w) => w.stamp),
        gone,
        ackPks,
        ackIds,
        claim.chunk,
      ],
    );
  const recordFailures = async (q: Queryable, list: Array<{ pk: string; error: string }>, permanent: boolean) => {
    if (list.length === 0) return;
    const pks = new Set(list.map((f) => f.pk));
    const mine = claim.ackPks.flatMap((pk, i) => (pks.has(pk) ? [[pk, claim.ackIds[i]!] as const] : []));
    await q.query('SELECT superduper._fail($1, $2::text[], $3::text[], $4::text[], $5::bigint[], $6)', [
      listener.id,
      list.map((f) => f.pk),
      list.map((f) => f.error),
      mine.map(([pk]) => pk),
      mine.map(([, id]) => id),
      permanent,
    ]);
  };

  let writtenCount = 0;
  try {
    if (failed.length + invalid.length === 0) {
      writtenCount = (await write(db)).rows[0]?.written ?? 0;
    } else {
      // Failures and outputs commit together: a backfill range is never done
      // while its failed rows are not yet queued for a retry.
      writtenCount = await db.transaction(async (tx) => {
        await recordFailures(tx, failed, false);
        await recordFailures(tx, invalid, true);
        return (await write(tx)).rows[0]?.written ?? 0;
      });
    }
  } catch (error) {
    if (isTransientDatabaseError(error) || (error as { code?: string }).code === '42883') throw error;
    // The batch could not be written (say, a constraint on the outputs table):
    // record it as a failure of each row rather than retrying it forever.
    const message = `could not write outputs: ${describeError(error)}`;
    const all = [...failed, ...written.map((w) => ({ pk: w.pk, error: message }))];
    await db.transaction(async (tx) => {
      await recordFailures(tx, all, false);
      await recordFailures(tx, invalid, true);
      await tx.query(`SELECT ${fn(listener.id, 'write')}('{}', '{}', '{}', $1::text[], $2::text[], $3::bigint[], $4::integer)`, [
        gone,
        ackPks.filter((pk) => !written.some((w) => w.pk === pk)),
        ackIds.filter((_, i) => !written.some((w) => w.pk === ackPks[i])),
        claim.chunk,
      ]);
    });
    failed.splice(0, failed.length, ...all);
    written.length = 0;
  }

  if (failed.length + invalid.length > 0) {
    context.logger.warn(
      { listener: listener.name, failed: failed.length + invalid.length, error: (failed[0] ?? invalid[0])?.error },
      'rows failed',
    );
  }
  return { claimed: rows.length, written: writtenCount, failed: failed.length + invalid.length, source: claim.source };
}

type PredictResult = { ok: true; value: unknown } | { ok: false; error: string };

/**
 * Runs the model on a batch; if the batch fails, runs each row alone, so that one
 * bad row fails alone and the others are written.
 */
async function predictIsolatingFailures(model: LoadedModel, listener: ListenerInfo, inputs: unknown[]): Promise<PredictResult[]> {
  const check = (value: unknown): PredictResult => {
    try {
      return { ok: true, value: checkOutput(value, listener.output, listener.model) };
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    }
  };
  try {
    const outputs = await model.predict(inputs);
    if (!Array.isArray(outputs) || outputs.length !== inputs.length) {
      throw new Error(
        `model "${listener.model}" returned ${Array.isArray(outputs) ? `${outputs.length} outputs` : `a ${typeof outputs}`} for ${inputs.length} inputs`,
      );
    }
    return outputs.map(check);
  } catch (batchError) {
    if (inputs.length === 1) return [{ ok: false, error: modelError(listener, batchError) }];
    const results: PredictResult[] = [];
    for (const input of inputs) {
      try {
        const [output, ...extra] = await model.predict([input]);
        results.push(extra.length > 0 ? { ok: false, error: `model "${listener.model}" returned ${extra.length + 1} outputs for 1 input` } : check(output));
      } catch (error) {
        results.push({ ok: false, error: modelError(listener, error) });
      }
    }
    return results;
  }
}

function modelError(listener: ListenerInfo, error: unknown): string {
  const message = describeError(error);
  return message.includes(`model "${listener.model}"`) ? message : `model "${listener.model}" failed: ${message}`;
}

/** NULL (or empty text) key values cannot be computed: say which column of which row. */
function keyProblem(listener: ListenerInfo, row: ClaimedRow): string | undefined {
  const values = listener.keys.map((_, i) => row[`k${i + 1}`]);
  const isEmpty = (value: unknown) => value === null || value === undefined || value === '';
  if (values.every(isEmpty)) {
    const which = listener.keys.length === 1 ? `key column ${displayIdent(listener.keys[0]!)} is` : `key columns ${listener.keys.map(displayIdent).join(', ')} are`;
    const what = values.every((v) => v === null || v === undefined) ? 'NULL' : 'empty';
    return `row ${row.sd_pk}: ${which} ${what}; listener "${listener.name}" has nothing to compute (set a value, or exclude such rows with a filter)`;
  }
  return undefined;
}

function modelInput(listener: ListenerInfo, row: ClaimedRow): unknown {
  if (listener.keys.length === 1) return row.k1;
  return Object.fromEntries(listener.keys.map((key, i) => [key, row[`k${i + 1}`]]));
}

function outputsParam(db: Database, spec: OutputSpec, outputs: unknown[]): unknown {
  if (spec.type === 'vector') return db.vectorArrayParam(outputs as number[][]);
  return outputs;
}
