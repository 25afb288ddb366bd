import { MongoServerError, type AnyBulkWriteOperation, type ChangeStream, type ChangeStreamDocument, type Document, type ResumeToken, type Timestamp } from 'mongodb';
import { describeError, errorFields } from '../../errors.js';
import { clusterTime, collection, seqOf, type MongoContext } from './context.js';
import type { BackfillRangeDoc, ListenerDoc, OutputDoc, QueueDoc } from './documents.js';
import { filterPaths, keyText, touches } from './keys.js';
import { COLLECTIONS, PREFIX, WATCHED_OWN } from './names.js';

/** How long the capture's lease lasts unrenewed: another sidecar takes over after it. */
const LEASE_MS = 10_000;
/** How often the lease is renewed, and an idle stream's position saved. */
const RENEW_MS = 2_000;
/** Events handled (and their position saved) at once. */
const BATCH = 1000;

/** Codes after which a change stream cannot resume: its history is gone. */
const HISTORY_LOST = new Set([286 /* ChangeStreamHistoryLost */, 280 /* ChangeStreamFatalError */, 136 /* CappedPositionLost */]);

interface CaptureDoc {
  _id: 'capture';
  start_at: Timestamp;
  token?: ResumeToken | null;
  owner?: string;
  lease_until?: Date;
  saved_at?: Date;
  history_lost_at?: Date;
}

type Event = ChangeStreamDocument & { clusterTime?: Timestamp; ns?: { db: string; coll?: string }; documentKey?: { _id: unknown } };

/**
 * Change capture for a whole database: one change stream, read by one sidecar
 * at a time (a lease in superduper.meta, taken over when its holder stops
 * renewing it), turned into queue entries for every listener. Its position (the
 * resume token) is saved in the database only after the entries for the events
 * before it are written, so a capture that is killed, or a server that
 * restarts, resumes where the written work ends: nothing is missed, and events
 * read twice find their outputs already written (see queue.ts). A position that
 * has fallen off the oplog is noticed, and every listener re-scans its source.
 *
 * One stream for the database, not one per listener: the registry's own
 * changes arrive in the same order as the users' (a listener's insert comes
 * before the first change it must follow), and waitFor()'s marks show how far
 * the capture has read.
 */
export class Capture {
  #stopped = false;
  #stream: ChangeStream | undefined;
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #listeners = new Map<string, ListenerDoc[]>();

  constructor(
    private readonly context: MongoContext,
    private readonly ownerId: string,
  ) {}

  start(): void {
    this.#running ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#stream?.close().catch(() => {});
    await this.#running;
    await collection<CaptureDoc>(this.context, COLLECTIONS.meta)
      .updateOne({ _id: 'capture', owner: this.ownerId }, { $unset: { owner: '', lease_until: '' } })
      .catch(() => {});
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        if (await this.#acquire()) {
          await this.#follow();
          failures = 0;
        } else await this.#sleep(RENEW_MS);
      } catch (error) {
        if (this.#stopped) return;
        failures++;
        if (failures === 1 || failures % 30 === 0) this.context.logger.warn(errorFields(error), 'change capture failed; trying again');
        await this.#sleep(Math.min(5000, 200 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async #acquire(): Promise<boolean> {
    const now = new Date();
    const meta = collection<CaptureDoc>(this.context, COLLECTIONS.meta);
    const taken = await meta.findOneAndUpdate(
      { _id: 'capture', $or: [{ owner: { $exists: false } }, { owner: this.ownerId }, { lease_until: { $lt: now } }] },
      { $set: { owner: this.ownerId, lease_until: new Date(now.getTime() + LEASE_MS) } },
      { returnDocument: 'after' },
    );
    return taken !== null;
  }

  /** Reads the stream while this process holds the lease. */
  async #follow(): Promise<void> {
    const meta = collection<CaptureDoc>(this.context, COLLECTIONS.meta);
    const position = await meta.findOne({ _id: 'capture' });
    if (!position) return;
    await this.#loadListeners();
    const pipeline: Document[] = [
      {
        $match: {
          $or: [
            { 'ns.coll': { $not: new RegExp(`^${PREFIX.replace('.', '\\.')}`) } },
            { 'ns.coll': { $in: WATCHED_OWN } },
            { operationType: { $in: ['dropDatabase', 'invalidate'] } },
          ],
        },
      },
    ];
    const stream = this.context.db.watch(pipeline, {
      ...(position.token ? { resumeAfter: position.token } : { startAtOperationTime: position.start_at }),
      maxAwaitTimeMS: 500,
    });
    this.#stream = stream;
    let renewedAt = Date.now();
    try {
      while (!this.#stopped) {
        const events: Event[] = [];
        let event = (await stream.tryNext()) as Event | null;
        while (event) {
          events.push(event);
          if (events.length >= BATCH || stream.bufferedCount() === 0) break;
          event = (await stream.tryNext()) as Event | null;
        }
        const closing = events.some((e) => e.operationType === 'invalidate');
        if (events.length > 0) await this.#handle(events);
        // Saved after each batch handled; with none, when the lease is due for renewal
        // (the position still moves past events the filter drops, e.g. outputs written).
        const due = Date.now() - renewedAt >= RENEW_MS;
        if (events.length > 0 || due) {
          const saved = await meta.updateOne(
            { _id: 'capture', owner: this.ownerId },
            { $set: { token: stream.resumeToken, saved_at: new Date(), lease_until: new Date(Date.now() + LEASE_MS) } },
          );
          if (saved.matchedCount === 0) return; // another sidecar holds the lease now
          renewedAt = Date.now();
        }
        if (closing) return;
      }
    } catch (error) {
      if (error instanceof MongoServerError && typeof error.code === 'number' && HISTORY_LOST.has(error.code)) {
        await this.#historyLost(error);
        return;
      }
      throw error;
    } finally {
      this.#stream = undefined;
      await stream.close().catch(() => {});
    }
  }

  async #loadListeners(): Promise<void> {
    const docs = await collection<ListenerDoc>(this.context, COLLECTIONS.listeners)
      .find({ state: { $in: ['current', 'building'] } })
      .toArray();
    this.#listeners = new Map();
    for (const doc of docs) this.#listeners.set(doc.collection, [...(this.#listeners.get(doc.collection) ?? []), doc]);
    this.context.signals.emit('listeners');
  }

  /** Queue entries and deletions for a batch of events, then the marks they passed. */
  async #handle(events: Event[]): Promise<void> {
    const dbName = this.context.db.databaseName;
    const queued: AnyBulkWriteOperation<QueueDoc>[] = [];
    const deletions: Array<{ doc: ListenerDoc; key: unknown; seq: string }> = [];
    const marks: Array<{ id: unknown; seq: string }> = [];
    const changed = new Set<number>();
    const now = new Date();
    const flush = async () => {
      for (const deletion of deletions) {
        // A deleted document's output goes at once (not an output of a newer
        // document that took its _id since).
        await this.context.db.collection(deletion.doc.outputs).deleteOne({ _id: deletion.key, _seq: { $lt: deletion.seq } } as Document);
      }
      if (queued.length > 0) await collection<QueueDoc>(this.context, COLLECTIONS.queue).bulkWrite(queued, { ordered: false });
      for (const mark of marks) await collection(this.context, COLLECTIONS.marks).updateOne({ _id: mark.id as never }, { $set: { seen: mark.seq } });
      queued.length = 0;
      deletions.length = 0;
      marks.length = 0;
    };
    for (const event of events) {
      const coll = event.ns?.coll;
      if (event.ns && event.ns.db !== dbName) continue;
      const seq = event.clusterTime ? seqOf(event.clusterTime) : seqOf(await clusterTime(this.context));
      if (event.operationType === 'dropDatabase' || event.operationType === 'invalidate') {
        await flush();
        await this.#stopAll(`the database "${dbName}" was dropped`);
        continue;
      }
      if (coll === COLLECTIONS.listeners) {
        await flush();
        await this.#loadListeners();
        continue;
      }
      if (coll === COLLECTIONS.marks) {
        if (event.operationType === 'insert') marks.push({ id: event.documentKey!._id, seq });
        continue;
      }
      if (coll === COLLECTIONS.components) {
        if (event.operationType === 'insert' || event.operationType === 'replace') this.context.signals.emit('components');
        continue;
      }
      if (coll === COLLECTIONS.requests) {
        if (event.operationType === 'insert') this.context.signals.emit('request', keyText(event.documentKey!._id));
        continue;
      }
      const watching = coll === undefined ? undefined : this.#listeners.get(coll);
      if (!watching) continue;
      if (event.operationType === 'drop' || event.operationType === 'rename') {
        await flush();
        const what =
          event.operationType === 'drop'
            ? `collection "${coll}" was dropped`
            : `collection "${coll}" was renamed to "${(event as { to?: { coll?: string } }).to?.coll ?? '?'}"`;
        for (const doc of watching) await this.#stop(doc, what);
        await this.#loadListeners();
        continue;
      }
      const key = event.documentKey?._id;
      if (key === undefined) continue;
      for (const doc of watching) {
        if (doc.seq_start && seq <= doc.seq_start) continue; // the backfill reads it
        if (event.operationType === 'update' && !this.#touchesListener(doc, event)) continue;
        const id = { l: doc._id, k: keyText(key) };
        if (event.operationType === 'delete') {
          deletions.push({ doc, key, seq });
          // Only a claim under way (or a backfill range) can write its output
          // again: its entry's seq moves, so that it is looked at once more.
          const upsert = !doc.backfill.done;
          queued.push({
            updateOne: {
              filter: { _id: id },
              update: { $max: { seq }, $min: { first_seq: seq }, $set: { next_at: now }, $setOnInsert: { listener_id: doc._id, key, enqueued_at: now, attempts: 0 } },
              upsert,
            },
          });
        } else {
          queued.push({
            updateOne: {
              filter: { _id: id },
              update: { $max: { seq }, $min: { first_seq: seq }, $set: { next_at: now, attempts: 0 }, $setOnInsert: { listener_id: doc._id, key, enqueued_at: now } },
              upsert: true,
            },
          });
        }
        changed.add(doc._id);
      }
    }
    await flush();
    for (const id of changed) this.context.signals.emit('changed', id);
  }

  /** An update that changes no key field (and no field the filter reads) computes nothing. */
  #touchesListener(doc: ListenerDoc, event: Event): boolean {
    const description = (event as { updateDescription?: { updatedFields?: Document; removedFields?: string[]; truncatedArrays?: Array<{ field: string }> } }).updateDescription;
    if (!description) return true;
    const changed = [
      ...Object.keys(description.updatedFields ?? {}),
      ...(description.removedFields ?? []),
      ...(description.truncatedArrays ?? []).map((t) => t.field),
    ];
    const read = doc.filter ? filterPaths(doc.filter) : [];
    if (read === undefined) return true;
    return changed.some((path) => [...doc.keys, ...read].some((field) => touches(path, field)));
  }

  async #stop(doc: ListenerDoc, what: string): Promise<void> {
    await collection<ListenerDoc>(this.context, COLLECTIONS.listeners).updateOne(
      { _id: doc._id },
      {
        $set: {
          state: 'stopped',
          note: `${what} at ${new Date().toISOString()}: the listener stopped (its outputs are kept); apply it again once the collection is back, or remove it`,
          updated_at: new Date(),
        },
      },
    );
    this.context.logger.warn({ listener: doc.name, version: doc.version, reason: what }, 'listener stopped');
  }

  async #stopAll(what: string): Promise<void> {
    for (const docs of this.#listeners.values()) for (const doc of docs) await this.#stop(doc, what).catch(() => {});
    this.#listeners = new Map();
  }

  /**
   * The stream cannot resume: events were lost. Every listener re-scans its
   * source (a reconciling backfill: what it writes is current, and outputs it
   * did not write are of documents gone meanwhile), and the stream starts again
   * from now.
   */
  async #historyLost(error: unknown): Promise<void> {
    this.context.logger.warn({ error: describeError(error) }, 'the change stream cannot resume (its position is no longer in the oplog): every listener re-scans its collection');
    const now = await clusterTime(this.context);
    const seq = seqOf(now);
    const listeners = collection<ListenerDoc>(this.context, COLLECTIONS.listeners);
    for (const doc of await listeners.find({ state: { $in: ['current', 'building'] } }).toArray()) {
      await collection<BackfillRangeDoc>(this.context, COLLECTIONS.backfill).deleteMany({ listener_id: doc._id });
      const total = await this.context.db.collection(doc.collection).countDocuments(doc.filter ?? {});
      await listeners.updateOne(
        { _id: doc._id },
        {
          $set: {
            seq_start: seq,
            backfill: { bracket: 0, after: null, done: false, total, written: 0, chunks: 0, fresh: false, reconcile_before: seq },
            note: `re-scanning: the change stream's position was lost from the oplog at ${new Date().toISOString()}`,
            updated_at: new Date(),
          },
        },
      );
    }
    await collection<CaptureDoc>(this.context, COLLECTIONS.meta).updateOne(
      { _id: 'capture', owner: this.ownerId },
      { $set: { token: null, start_at: now, history_lost_at: new Date() } },
    );
  }
}
