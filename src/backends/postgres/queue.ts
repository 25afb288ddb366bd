import { LISTENER_CHANGED, SuperduperError } from '../../errors.js';
import type { ClaimedRow, ListenerInfo } from '../../sidecar/listener-info.js';
import type { RowFailure, WorkQueue, WriteBatch } from '../backend.js';
import type { WaitResult } from '../types.js';
import type { Queryable, SqlDriver } from './sql-driver.js';
import type { Element } from '../../models/output-check.js';
import { SQLSTATES } from '../../generated/constants.js';

/** superduper."_l<id>_<suffix>", the per-listener functions rendered at apply time (sql/templates/). */
function listenerFunction(listenerId: number, suffix: 'claim' | 'claim_chunk' | 'write'): string {
  return `superduper."_l${listenerId}_${suffix}"`;
}

/** A row moved to the failures, whose output from an earlier value goes (see the write template). */
interface Withdrawal {
  pk: string;
  stamp: string;
}

/**
 * The queue through each listener's rendered functions (claim, claim_chunk,
 * write) and superduper._fail / _extend_lease / _worker_release / wait_for.
 */
export function postgresQueue(db: SqlDriver): WorkQueue {
  return {
    async claim(sidecarId, listener) {
      const lease = listener.settings.lease_seconds;
      const queued = await againIfReplaced(() =>
        db.query<ClaimedRow>(`SELECT * FROM ${listenerFunction(listener.id, 'claim')}($1, $2, make_interval(secs => $3))`, [
          sidecarId,
          listener.settings.batch_size,
          lease,
        ]),
      );
      if (queued.rows.length > 0) return { rows: queued.rows, source: 'queue' };
      const range = await againIfReplaced(() =>
        db.query<ClaimedRow>(`SELECT * FROM ${listenerFunction(listener.id, 'claim_chunk')}($1, make_interval(secs => $2), $3)`, [
          sidecarId,
          lease,
          listener.settings.chunk_size,
        ]),
      );
      return { rows: range.rows, source: range.rows.length > 0 ? 'backfill' : 'none' };
    },

    async write(_workerId, listener, batch, failures) {
      // Rows found gone: writes in flight that saw them still there commit
      // first, so that the write below removes their outputs too (see
      // superduper._await_writes). Its own transaction, holding nothing else.
      if (batch.gone.length > 0) await db.query('SELECT superduper._await_writes($1)', [listener.id]);
      return againIfReplaced(() =>
        failures.length === 0
          ? writeOutputs(db, db, listener, batch, [])
          : // Failures and outputs commit together: a backfill range is never done
            // while its failed rows are not yet queued for a retry, and an output
            // of an earlier value goes with its row's move to the failures.
            db.transaction(async (tx) => writeOutputs(tx, db, listener, batch, await recordFailures(tx, listener, failures, batch))),
      );
    },

    async extendLease(sidecarId, flight) {
      await db.query('SELECT superduper._extend_lease($1, $2, $3::text[], $4::bigint[], $5, make_interval(secs => $6))', [
        sidecarId,
        flight.listener.id,
        flight.ackPks,
        flight.ackIds,
        flight.chunk,
        flight.listener.settings.lease_seconds,
      ]);
    },

    async release(sidecarId) {
      await db.query('SELECT superduper._worker_release($1)', [sidecarId]);
    },

    async progress(sidecarId, listener, chunk, computed) {
      await db.query('SELECT superduper._backfill_progress($1, $2, $3, $4)', [listener.id, chunk, sidecarId, computed]);
    },

    async waitFor(listener, timeoutSeconds) {
      const result = await db.query<WaitResult['failed'][number]>(
        `SELECT listener, ARRAY(SELECT jsonb_array_elements_text(primary_key)) AS primary_key, error, failed_at
         FROM superduper.wait_for($1, make_interval(secs => $2))`,
        [listener ?? null, timeoutSeconds],
      );
      return { failed: result.rows };
    },
  };
}

/**
 * A claim or write that waited while its listener's code was replaced (a filter
 * changed, a version promoted: superduper._lock_listeners) raises SDR01 rather
 * than run the old code. The same call made again reaches the new code (or
 * undefined_function, when the listener is gone). Either, when it persists, is
 * the domain's "listener changed": the sidecar reads its listeners again.
 */
async function againIfReplaced<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === SQLSTATES.code_replaced && attempt < 3) continue;
      // 42883 undefined_function: the listener's code is gone.
      if (code === SQLSTATES.code_replaced || code === '42883') {
        throw new SuperduperError(`the listener's code was replaced or removed meanwhile: ${(error as Error).message}`, {
          code: LISTENER_CHANGED,
          cause: error,
        });
      }
      throw error;
    }
  }
}

async function writeOutputs(q: Queryable, db: SqlDriver, listener: ListenerInfo, batch: WriteBatch, withdraw: Withdrawal[]): Promise<number> {
  if (listener.output.flatten) return writeElements(q, db, listener, batch, withdraw);
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
    withdraw.map((w) => w.pk),
    withdraw.map((w) => w.stamp),
  ]);
  return result.rows[0]?.written ?? 0;
}

/**
 * The write of a listener whose model returns a list per row
 * (sql/templates/write_many.sql): per row its key, stamp, hash and count; per
 * element its row's ordinal (1-based), position, value and lineage.
 */
async function writeElements(q: Queryable, db: SqlDriver, listener: ListenerInfo, batch: WriteBatch, withdraw: Withdrawal[]): Promise<number> {
  const rowsOf: number[] = [];
  const positions: number[] = [];
  const values: unknown[] = [];
  const starts: Array<number | null> = [];
  const ends: Array<number | null> = [];
  const headings: Array<string | null> = [];
  const counts = batch.outputs.map((output, r) => {
    const elements = output as Element[];
    elements.forEach((element, position) => {
      rowsOf.push(r + 1);
      positions.push(position);
      values.push(element.value);
      starts.push(element.start);
      ends.push(element.end);
      headings.push(element.headings === null ? null : JSON.stringify(element.headings));
    });
    return elements.length;
  });
  const pkCount = listener.pk.length;
  const pkParams = listener.pk.map((_, i) => `$${i + 1}::text[]`).join(', ');
  const at = (n: number) => `$${pkCount + n}`;
  const sql =
    `SELECT ${listenerFunction(listener.id, 'write')}(${pkParams}, ${at(1)}::bigint[], ${at(2)}::text[], ${at(3)}::integer[], ` +
    `${at(4)}::integer[], ${at(5)}::integer[], ${at(6)}, ${at(7)}::integer[], ${at(8)}::integer[], ${at(9)}::jsonb[], ` +
    `${at(10)}::text[], ${at(11)}::text[], ${at(12)}::bigint[], ${at(13)}::integer, ${at(14)}::text[], ${at(15)}::bigint[]) AS written`;
  const result = await q.query<{ written: number }>(sql, [
    ...listener.pk.map((_, i) => batch.rows.map((row) => row[`p${i + 1}`])),
    batch.rows.map((row) => row.sd_stamp),
    batch.rows.map((row) => row.sd_hash ?? null),
    counts,
    rowsOf,
    positions,
    listener.output.type === 'vector' ? db.vectorArrayParam(values as ArrayLike<number>[]) : values,
    starts,
    ends,
    headings,
    batch.gone,
    batch.ackPks,
    batch.ackIds,
    batch.chunk,
    withdraw.map((w) => w.pk),
    withdraw.map((w) => w.stamp),
  ]);
  return result.rows[0]?.written ?? 0;
}

/**
 * Records failures (superduper._fail): the rows' queue entries become a retry
 * with backoff, or a failure record; returns the rows that moved to the failures
 * for good.
 */
async function recordFailures(q: Queryable, listener: ListenerInfo, failures: readonly RowFailure[], claimed: WriteBatch): Promise<Withdrawal[]> {
  const moved: Withdrawal[] = [];
  const pks = claimed.claimedPks;
  const ids = claimed.claimedIds;
  for (const permanent of [false, true]) {
    const list = failures.filter((f) => f.permanent === permanent);
    if (list.length === 0) continue;
    const keys = new Set(list.map((f) => f.key));
    const mine = pks.flatMap((pk, i) => (keys.has(pk) ? [[pk, ids[i]!] as const] : []));
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
