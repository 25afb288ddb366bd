import { createHash, randomUUID } from 'node:crypto';
import { EJSON, Long } from 'bson';
import { MongoBulkWriteError, type AnyBulkWriteOperation, type Collection, type Document } from 'mongodb';
import { LISTENER_CHANGED, SuperduperError } from '../../errors.js';
import type { ClaimedRow, ListenerInfo } from '../../sidecar/listener-info.js';
import type { OutputSpec } from '../../models/types.js';
import type { Claim, WorkQueue } from '../backend.js';
import { ID_BRACKETS, rangeQuery } from './brackets.js';
import { collection, type MongoContext } from './context.js';
import type { BackfillRangeDoc, FailureDoc, ListenerDoc, OutputDoc, QueueDoc } from './documents.js';
import { keyText, keyValue, valueAt } from './keys.js';
import { COLLECTIONS } from './names.js';
import { waitForOutputs } from './wait-for.js';

/**
 * The work queue on MongoDB. Changed documents are queued by the capture (one
 * entry per listener and document, its `seq` the clusterTime of the latest
 * change); existing documents are read in ranges of _id by the backfill. Every
 * step is a single-document atomic update or a conditional one, so several
 * sidecars share the work without transactions and without duplicates:
 *
 * - a claim sets owner and lease on entries whose lease is free, then reads
 *   back the ones it got;
 * - an output is written only over an output of an older `_seq` (or none), so a
 *   slow sidecar never overwrites a newer value;
 * - an entry is acknowledged only if its `seq` did not move meanwhile: a change
 *   that arrived while it was computed is computed again.
 */
export function mongoQueue(context: MongoContext): WorkQueue {
  const queue = collection<QueueDoc>(context, COLLECTIONS.queue);
  const ranges = collection<BackfillRangeDoc>(context, COLLECTIONS.backfill);
  const listeners = collection<ListenerDoc>(context, COLLECTIONS.listeners);
  const failures = collection<FailureDoc>(context, COLLECTIONS.failures);

  async function version(listener: ListenerInfo): Promise<ListenerDoc> {
    const doc = await listeners.findOne({ _id: listener.id });
    if (!doc || (doc.state !== 'current' && doc.state !== 'building')) {
      throw new SuperduperError(`listener "${listener.name}" version ${listener.version} was removed, replaced or stopped meanwhile`, { code: LISTENER_CHANGED });
    }
    return doc;
  }

  /** The fields a claim reads from a source document: its key paths, cut at the first part. */
  function projection(doc: ListenerDoc): Document {
    return Object.fromEntries([...new Set(doc.keys.map((key) => key.split('.')[0]!))].map((field) => [field, 1]));
  }

  function row(doc: ListenerDoc, source: Document, stamp: string): ClaimedRow {
    const claimed: ClaimedRow = { sd_stamp: stamp, sd_live: true, p1: keyText(source._id) };
    doc.keys.forEach((key, i) => {
      claimed[`k${i + 1}`] = valueAt(source, key) ?? null;
    });
    return claimed;
  }

  function withFilter(doc: ListenerDoc, query: Document): Document {
    return doc.filter ? { $and: [query, doc.filter] } : query;
  }

  async function claimQueued(sidecarId: string, doc: ListenerDoc): Promise<ClaimedRow[]> {
    const now = new Date();
    const free = { $or: [{ owner: { $exists: false } }, { lease_until: { $lt: now } }] };
    const ready = { listener_id: doc._id, next_at: { $lte: now }, ...free };
    const candidates = await queue.find(ready).limit(doc.settings.batch_size).project<{ _id: QueueDoc['_id'] }>({ _id: 1 }).toArray();
    if (candidates.length === 0) return [];
    const claim = randomUUID();
    await queue.updateMany(
      { _id: { $in: candidates.map((c) => c._id) }, ...free },
      { $set: { owner: sidecarId, lease_until: new Date(now.getTime() + doc.settings.lease_seconds * 1000), claim }, $inc: { attempts: 1 } },
    );
    const entries = await queue.find({ _id: { $in: candidates.map((c) => c._id) }, claim } as Document).toArray();
    if (entries.length === 0) return [];
    const keys = entries.map((entry) => entry.key);
    const [sources, outputs] = await Promise.all([
      context.db.collection(doc.collection).find(withFilter(doc, { _id: { $in: keys } }), { projection: projection(doc) }).toArray(),
      context.db.collection(doc.outputs).find({ _id: { $in: keys } }, { projection: { _seq: 1, _input: 1 } }).toArray(),
    ]);
    const byKey = new Map(sources.map((source) => [keyText(source._id), source]));
    const written = new Map(outputs.map((output) => [keyText(output._id), output as unknown as Pick<OutputDoc, '_seq' | '_input'>]));
    const rows: ClaimedRow[] = [];
    const current: Array<{ entry: QueueDoc; id: unknown; seq: string }> = [];
    for (const entry of entries) {
      const source = byKey.get(entry._id.k);
      const claimed: ClaimedRow = source ? row(doc, source, entry.seq) : { sd_stamp: entry.seq, sd_live: false, p1: entry._id.k };
      // Nothing to compute when the output is of this very input: an event read
      // again after a restart, or a change the backfill had already read.
      const output = written.get(entry._id.k);
      if (source && output && (output._seq >= entry.seq || output._input === inputHash(doc, claimed))) {
        current.push({ entry, id: source._id, seq: entry.seq });
        continue;
      }
      claimed.sd_pk = JSON.stringify([entry._id.k]);
      claimed.sd_ids = [entry.seq];
      rows.push(claimed);
    }
    if (current.length > 0) {
      await restamp(doc, current);
      await acknowledge(sidecarId, current.map(({ entry }) => ({ k: entry._id.k, seq: entry.seq })), doc._id);
    }
    return rows;
  }

  /** Outputs found current for a newer change take its seq, as if computed from it. */
  async function restamp(doc: ListenerDoc, current: Array<{ id: unknown; seq: string }>): Promise<void> {
    await context.db.collection(doc.outputs).bulkWrite(
      current.map(({ id, seq }): AnyBulkWriteOperation => ({ updateOne: { filter: { _id: id as Document['_id'], _seq: { $lt: seq } }, update: { $set: { _seq: seq } } } })),
      { ordered: false },
    );
  }

  async function acknowledge(sidecarId: string, entries: Array<{ k: string; seq: string }>, listenerId: number): Promise<void> {
    if (entries.length === 0) return;
    await queue.bulkWrite(
      entries.map((entry) => ({ deleteOne: { filter: { _id: { l: listenerId, k: entry.k }, seq: entry.seq } } })),
      { ordered: false },
    );
    // Entries whose seq moved (changed again meanwhile) stay, free to be claimed again.
    await queue.updateMany(
      { _id: { $in: entries.map((entry) => ({ l: listenerId, k: entry.k })) }, owner: sidecarId },
      { $unset: { owner: '', lease_until: '', claim: '' } },
    );
  }

  /** What `backfill.gone` was when each range this process holds was read. */
  const goneAtClaim = new Map<string, number>();
  const rangeKey = (listenerId: number, n: number) => `${listenerId}:${n}`;

  /**
   * A range's documents that went while it computed: the queue removed their
   * outputs before this range wrote them. Looked for only when the queue
   * found documents gone since the range was read.
   */
  async function removeOutputsOfGone(doc: ListenerDoc, chunk: number, rows: ClaimedRow[]): Promise<void> {
    const key = rangeKey(doc._id, chunk);
    const before = goneAtClaim.get(key);
    goneAtClaim.delete(key);
    if (rows.length === 0) return;
    const now = await listeners.findOne({ _id: doc._id }, { projection: { 'backfill.gone': 1 } });
    if (before !== undefined && (now?.backfill.gone ?? 0) === before) return;
    const gone = await missingSources(doc, rows.map((claimed) => claimed.p1 as string));
    if (gone.length > 0) await context.db.collection(doc.outputs).deleteMany({ _id: { $in: gone.map(keyValue) } });
  }

  /** Of these keys (as text), those whose documents are no longer in the listener's source (deleted, or out of its filter). */
  async function missingSources(doc: ListenerDoc, keys: string[]): Promise<string[]> {
    const present = await context.db
      .collection(doc.collection)
      .find(withFilter(doc, { _id: { $in: keys.map(keyValue) } }), { projection: { _id: 1 } })
      .toArray();
    const there = new Set(present.map((source) => keyText(source._id)));
    return keys.filter((k) => !there.has(k));
  }

  /** A range whose sidecar died is handed out again, re-read with the same bounds. */
  async function reclaimRange(sidecarId: string, doc: ListenerDoc): Promise<ClaimedRow[] | undefined> {
    const now = new Date();
    const range = await ranges.findOneAndUpdate(
      { listener_id: doc._id, lease_until: { $lt: now } },
      { $set: { owner: sidecarId, lease_until: new Date(now.getTime() + doc.settings.lease_seconds * 1000), computed: 0 } },
      { returnDocument: 'after' },
    );
    if (!range) return undefined;
    goneAtClaim.set(rangeKey(doc._id, range._id.n), doc.backfill.gone ?? 0);
    const lower = rangeQuery(range.bracket, range.after);
    const sources = await context.db
      .collection(doc.collection)
      .find(withFilter(doc, { $and: [lower, { _id: { $lte: range.last.v } }] }), { projection: projection(doc) })
      .sort({ _id: 1 })
      .toArray();
    return rangeRows(doc, range._id.n, sources);
  }

  /**
   * A range's rows, less those the change stream has: a document changed since
   * the backfill began is queued (the queue computes it) or already computed
   * from its newer value. Without this, each would be computed twice.
   */
  async function rangeRows(doc: ListenerDoc, chunk: number, sources: Document[]): Promise<ClaimedRow[]> {
    const stamp = doc.seq_start ?? '0';
    const keys = sources.map((source) => keyText(source._id));
    // Each look-up only when it can find something: nothing queued for the
    // listener, or no output written but the backfill's (a first backfill).
    // In this order: a write from the queue clears `fresh` before it writes an
    // output and acknowledges its entry, so when `fresh` still holds after the
    // queue was read, every document the queue computes was in it.
    const anyQueued = keys.length > 0 && (await queue.findOne({ listener_id: doc._id }, { projection: { _id: 1 } })) !== null;
    const queued = anyQueued ? await queue.find({ _id: { $in: keys.map((k) => ({ l: doc._id, k })) } }, { projection: { _id: 1 } }).toArray() : [];
    const fresh = keys.length > 0 && (await listeners.findOne({ _id: doc._id }, { projection: { 'backfill.fresh': 1 } }))?.backfill.fresh === true;
    const outputs =
      keys.length > 0 && !fresh
        ? await context.db.collection(doc.outputs).find({ _id: { $in: sources.map((s) => s._id) } }, { projection: { _seq: 1, _input: 1 } }).toArray()
        : [];
    const skip = new Set(queued.map((entry) => entry._id.k));
    const written = new Map(outputs.map((output) => [keyText(output._id), output as unknown as Pick<OutputDoc, '_seq' | '_input'>]));
    const rows: ClaimedRow[] = [];
    const current: Array<{ id: unknown; seq: string }> = [];
    sources.forEach((source, i) => {
      if (skip.has(keys[i]!)) return;
      const claimed: ClaimedRow = { ...row(doc, source, stamp), sd_chunk: chunk };
      const output = written.get(keys[i]!);
      // Computed from a newer change already, or from this same input (a
      // reconciling re-scan finds most documents unchanged): nothing to compute.
      if (output && (output._seq > stamp || output._input === inputHash(doc, claimed))) {
        if (output._seq < stamp) current.push({ id: source._id, seq: stamp });
        return;
      }
      rows.push(claimed);
    });
    if (current.length > 0) await restamp(doc, current);
    return rows.length > 0 ? rows : [{ sd_stamp: stamp, sd_chunk: chunk, p1: null }];
  }

  async function claimRange(sidecarId: string, listener: ListenerInfo): Promise<ClaimedRow[]> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const doc = await version(listener);
      if (doc.backfill.done) return [];
      const again = await reclaimRange(sidecarId, doc);
      if (again) return again;
      const { bracket, after, chunks } = doc.backfill;
      if (bracket >= ID_BRACKETS.length) {
        await finishBackfill(doc);
        return [];
      }
      const sources = await context.db
        .collection(doc.collection)
        .find(withFilter(doc, rangeQuery(bracket, after)), { projection: projection(doc) })
        .sort({ _id: 1 })
        .limit(doc.settings.chunk_size)
        .batchSize(doc.settings.chunk_size) // one round trip, not 101 documents and a getMore
        .toArray();
      if (sources.length === 0) {
        // This type of _id is done: the next one (compare-and-set: one sidecar moves it).
        await listeners.updateOne({ _id: doc._id, 'backfill.chunks': chunks, 'backfill.bracket': bracket }, { $set: { 'backfill.bracket': bracket + 1, 'backfill.after': null } });
        continue;
      }
      const n = chunks + 1;
      const last = { v: sources.at(-1)!._id };
      const range: BackfillRangeDoc = {
        _id: { l: doc._id, n },
        listener_id: doc._id,
        bracket,
        after,
        last,
        rows: sources.length,
        owner: sidecarId,
        lease_until: new Date(Date.now() + doc.settings.lease_seconds * 1000),
      };
      try {
        await ranges.insertOne(range);
      } catch (error) {
        if ((error as { code?: number }).code !== 11000) throw error;
        // Range n exists: another sidecar took it (and moves the cursor), or one
        // died between taking it and moving the cursor: move it for it.
        const taken = await ranges.findOne({ _id: range._id });
        if (taken) {
          await listeners.updateOne({ _id: doc._id, 'backfill.chunks': chunks }, { $set: { 'backfill.chunks': n, 'backfill.bracket': taken.bracket, 'backfill.after': taken.last } });
        }
        continue;
      }
      await listeners.updateOne({ _id: doc._id, 'backfill.chunks': chunks }, { $set: { 'backfill.chunks': n, 'backfill.after': last } });
      // Read (in `doc`) before the range's documents were.
      goneAtClaim.set(rangeKey(doc._id, n), doc.backfill.gone ?? 0);
      return rangeRows(doc, n, sources);
    }
    return [];
  }

  /**
   * Every bracket read: the backfill is done once its last range is written. A
   * reconciling re-scan then removes outputs it did not write (their documents
   * are gone; their delete events were lost with the history).
   */
  async function finishBackfill(doc: ListenerDoc): Promise<void> {
    if ((await ranges.countDocuments({ listener_id: doc._id })) > 0) return;
    const done: Document = { 'backfill.done': true, updated_at: new Date() };
    // The re-scan's note becomes what happened, so status no longer says it is under way.
    if (doc.backfill.reconcile_before) done.note = `re-scanned (done ${new Date().toISOString()}): the change stream's position had been lost from the oplog`;
    const marked = await listeners.updateOne({ _id: doc._id, 'backfill.done': false, 'backfill.bracket': { $gte: ID_BRACKETS.length } }, { $set: done });
    if (marked.modifiedCount === 1 && doc.backfill.reconcile_before) {
      await context.db.collection(doc.outputs).deleteMany({ _seq: { $lt: doc.backfill.reconcile_before } });
    }
  }

  return {
    async claim(sidecarId, listener): Promise<Claim> {
      const doc = await version(listener);
      const queued = await claimQueued(sidecarId, doc);
      if (queued.length > 0) return { rows: queued, source: 'queue' };
      const rows = await claimRange(sidecarId, listener);
      return { rows, source: rows.length > 0 ? 'backfill' : 'none' };
    },

    async write(sidecarId, listener, batch, rowFailures) {
      const doc = await version(listener);
      const outputs = context.db.collection(doc.outputs);
      const now = new Date();
      let written = 0;
      if (batch.chunk === null && batch.rows.length > 0 && doc.backfill.fresh) {
        // Outputs from the queue are about to exist: from now on the backfill looks before computing (see rangeRows).
        await listeners.updateOne({ _id: doc._id }, { $set: { 'backfill.fresh': false } });
      }
      if (batch.rows.length > 0) {
        const outputOf = (claimed: ClaimedRow, i: number) => ({
          output: toStored(listener.output, batch.outputs[i]),
          _seq: claimed.sd_stamp ?? '0',
          _input: inputHash(doc, claimed),
          _computed_at: now,
        });
        // A first backfill's range while `fresh` holds: no output exists but
        // those the queue writes from now on (newer) or a retried range's
        // (the same), so plain inserts do, a duplicate key meaning "keep that
        // one". Elsewhere an upsert guarded by `_seq` never overwrites a newer value.
        const operations: AnyBulkWriteOperation[] =
          batch.chunk !== null && doc.backfill.fresh
            ? batch.rows.map((claimed, i) => ({ insertOne: { document: { _id: keyValue(claimed.p1 as string), ...outputOf(claimed, i) } } }))
            : batch.rows.map((claimed, i) => {
                const stamp = claimed.sd_stamp ?? '0';
                return {
                  updateOne: {
                    filter: { _id: keyValue(claimed.p1 as string), $or: [{ _seq: { $lt: stamp } }, { _seq: { $exists: false } }] },
                    update: { $set: outputOf(claimed, i) },
                    upsert: true,
                  },
                };
              });
        written = await writeGuarded(outputs, operations);
      }

      if (batch.gone.length > 0) {
        // Gone when claimed: remove their outputs unless they are back now
        // (then their new entry computes them again).
        const goneKeys = await missingSources(doc, batch.gone.map((pk) => (JSON.parse(pk) as string[])[0]!));
        if (goneKeys.length > 0) {
          // Counted before the outputs go, so that a range that read these documents before they went sees it (removeOutputsOfGone).
          if (!doc.backfill.done) await listeners.updateOne({ _id: doc._id }, { $inc: { 'backfill.gone': goneKeys.length } });
          await outputs.deleteMany({ _id: { $in: goneKeys.map(keyValue) } });
          await failures.deleteMany({ _id: { $in: goneKeys.map((k) => ({ l: doc._id, k })) } });
        }
      }

      const failed = new Set<string>();
      for (const failure of rowFailures) {
        const k = (JSON.parse(failure.key) as string[])[0]!;
        failed.add(k);
        await recordFailure(sidecarId, doc, k, failure.stamp ?? '0', failure.error, failure.permanent);
      }

      const acked: Array<{ k: string; seq: string }> = [];
      batch.ackPks.forEach((pk, i) => {
        const k = (JSON.parse(pk) as string[])[0]!;
        if (!failed.has(k)) acked.push({ k, seq: batch.ackIds[i]! });
      });
      await acknowledge(sidecarId, acked, doc._id);
      if (written > 0 && rowFailures.length === 0 && (await failures.findOne({ listener_id: doc._id }, { projection: { _id: 1 } })) !== null) {
        // A value computed now clears a failure recorded for an older one.
        await failures.deleteMany({ listener_id: doc._id, _id: { $in: batch.rows.map((r) => ({ l: doc._id, k: r.p1 as string })) } });
      }

      if (batch.chunk !== null) {
        await removeOutputsOfGone(doc, batch.chunk, batch.rows);
        const range = await ranges.findOneAndDelete({ _id: { l: doc._id, n: batch.chunk } });
        if (range) await listeners.updateOne({ _id: doc._id }, { $inc: { 'backfill.written': range.rows } });
      }
      return written;
    },

    async extendLease(sidecarId, flight) {
      const until = new Date(Date.now() + flight.listener.settings.lease_seconds * 1000);
      if (flight.ackPks.length > 0) {
        const ids = flight.ackPks.map((pk) => ({ l: flight.listener.id, k: (JSON.parse(pk) as string[])[0]! }));
        await queue.updateMany({ _id: { $in: ids }, owner: sidecarId }, { $set: { lease_until: until } });
      }
      if (flight.chunk !== null) await ranges.updateOne({ _id: { l: flight.listener.id, n: flight.chunk }, owner: sidecarId }, { $set: { lease_until: until } });
    },

    async release(sidecarId) {
      await releaseClaims(context, [sidecarId]);
    },

    async progress(sidecarId, listener, chunk, computed) {
      await ranges.updateOne({ _id: { l: listener.id, n: chunk }, owner: sidecarId }, { $set: { computed } });
    },

    waitFor: (listener, timeoutSeconds) => waitForOutputs(context, listener, timeoutSeconds),
  };

  async function recordFailure(sidecarId: string, doc: ListenerDoc, k: string, stamp: string, error: string, permanent: boolean): Promise<void> {
    const id = { l: doc._id, k };
    const entry = await queue.findOne({ _id: id });
    const attempts = entry?.owner === sidecarId ? entry.attempts : 1;
    const now = new Date();
    if (permanent || attempts >= doc.settings.max_attempts) {
      // For good: the output of an earlier value goes too (no output passes for current).
      const withdrawn = await context.db.collection(doc.outputs).deleteOne({ _id: keyValue(k), _seq: { $lt: stamp } });
      await failures.updateOne(
        { _id: id },
        {
          $set: { listener_id: doc._id, listener: doc.name, version: doc.version, key: keyValue(k), seq: stamp, attempts, error, failed_at: now, withdrawn: withdrawn.deletedCount > 0 },
          $setOnInsert: { first_failed_at: now },
        },
        { upsert: true },
      );
      await queue.deleteOne({ _id: id, seq: entry?.seq ?? stamp });
      return;
    }
    const delay = Math.min(doc.settings.backoff_max_seconds, doc.settings.backoff_seconds * 2 ** Math.max(0, attempts - 1));
    const next = new Date(now.getTime() + delay * 1000);
    if (entry) {
      await queue.updateOne({ _id: id }, { $set: { next_at: next, last_error: error }, $unset: { owner: '', lease_until: '', claim: '' } });
    } else {
      // A backfill row: it joins the queue for its retry.
      await queue.updateOne(
        { _id: id },
        { $max: { seq: stamp }, $min: { first_seq: stamp }, $set: { next_at: next, last_error: error }, $setOnInsert: { listener_id: doc._id, key: keyValue(k), enqueued_at: now, attempts: 1 } },
        { upsert: true },
      );
    }
  }
}

/**
 * What an output was computed from, as a short hash of its key values (types
 * included: 1 and "1" differ), so that a claim can tell an output is already of
 * the current input without running the model.
 */
function inputHash(doc: ListenerDoc, claimed: ClaimedRow): string {
  const values = doc.keys.map((_, i) => claimed[`k${i + 1}`]);
  // Canonical EJSON of strings is their JSON: the same hash, without EJSON's walk.
  const text = values.every((value) => typeof value === 'string') ? JSON.stringify(values) : EJSON.stringify(values, { relaxed: false });
  return createHash('sha1').update(text).digest('base64').slice(0, 16);
}

/**
 * Runs output upserts guarded by `_seq`: one whose filter finds an output of
 * a newer value fails with a duplicate key (the upsert's insert), which means
 * "keep the newer one". Returns how many were written.
 */
async function writeGuarded(outputs: Collection, operations: AnyBulkWriteOperation[]): Promise<number> {
  try {
    const result = await outputs.bulkWrite(operations, { ordered: false });
    return result.insertedCount + result.upsertedCount + result.modifiedCount;
  } catch (error) {
    if (!(error instanceof MongoBulkWriteError)) throw error;
    const errors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
    if (errors.some((writeError) => writeError.code !== 11000)) throw error;
    return error.result.insertedCount + error.result.upsertedCount + error.result.modifiedCount;
  }
}

/**
 * An output as MongoDB stores it. The core hands over what PostgreSQL's write
 * takes: jsonb as JSON text and integers beyond 2^53 as text; here they are a
 * document (or array) the shell can query, and a Long. Vectors become plain
 * arrays of numbers (a Float32Array would be stored as a document of indexes).
 */
function toStored(spec: OutputSpec, value: unknown): unknown {
  if (spec.type === 'jsonb' && typeof value === 'string') return JSON.parse(value);
  if (spec.type === 'integer' && typeof value === 'string') return Long.fromString(value);
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    // A loop, not Array.from: a million-document backfill copies tens of millions of numbers.
    const vector = value as unknown as ArrayLike<number>;
    const out = new Array<number>(vector.length);
    for (let i = 0; i < vector.length; i++) out[i] = vector[i]!;
    return out;
  }
  return value;
}

/** Hands back everything the given sidecars claimed: queue entries, backfill ranges, model calls. */
export async function releaseClaims(context: MongoContext, sidecarIds: string[]): Promise<number> {
  if (sidecarIds.length === 0) return 0;
  const queued = await collection<QueueDoc>(context, COLLECTIONS.queue).updateMany(
    { owner: { $in: sidecarIds } },
    { $unset: { owner: '', lease_until: '', claim: '' } },
  );
  const ranges = await collection<BackfillRangeDoc>(context, COLLECTIONS.backfill).updateMany(
    { owner: { $in: sidecarIds } },
    { $set: { lease_until: new Date(0) } },
  );
  await collection(context, COLLECTIONS.requests).updateMany(
    { owner: { $in: sidecarIds }, state: 'claimed' },
    { $set: { state: 'pending' }, $unset: { owner: '', lease_until: '' } },
  );
  return queued.modifiedCount + ranges.modifiedCount;
}
