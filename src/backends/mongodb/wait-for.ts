import { ObjectId } from 'mongodb';
import { SuperduperError } from '../../errors.js';
import { SQLSTATES } from '../../generated/constants.js';
import type { WaitResult } from '../types.js';
import { collection, type MongoContext } from './context.js';
import type { FailureDoc, ListenerDoc, QueueDoc } from './documents.js';
import { keyText } from './keys.js';
import { COLLECTIONS } from './names.js';

const POLL_MS = 20;

/**
 * Read your writes: writes a mark, waits until the capture's change stream has
 * passed it (so every change committed before the call is queued), then until
 * none of those changes is still queued and the backfills are done. Resolves
 * with the failures among them; rejects with code SDT01 on timeout.
 */
export async function waitForOutputs(context: MongoContext, listener: string | undefined, timeoutSeconds: number): Promise<WaitResult> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  const marks = collection<{ _id: ObjectId; at: Date; seen?: string }>(context, COLLECTIONS.marks);
  const listeners = collection<ListenerDoc>(context, COLLECTIONS.listeners);
  const queue = collection<QueueDoc>(context, COLLECTIONS.queue);
  const id = new ObjectId();
  await marks.insertOne({ _id: id, at: new Date() });
  try {
    let seen: string | undefined;
    for (;;) {
      seen ??= (await marks.findOne({ _id: id }))?.seen;
      const versions = await listeners.find({ state: { $in: ['current', 'building'] }, ...(listener === undefined ? {} : { name: listener }) }).toArray();
      if (listener !== undefined && versions.length === 0 && !(await listeners.findOne({ name: listener }))) {
        throw new SuperduperError(`superduper.wait_for: no listener named '${listener}'`);
      }
      const ids = versions.map((v) => v._id);
      const left = seen === undefined ? undefined : await queue.countDocuments({ listener_id: { $in: ids }, first_seq: { $lte: seen } });
      const backfilling = versions.filter((v) => !v.backfill.done);
      if (seen !== undefined && left === 0 && backfilling.length === 0) {
        const failed = await collection<FailureDoc>(context, COLLECTIONS.failures).find({ listener_id: { $in: ids }, seq: { $lte: seen } }).toArray();
        return { failed: failed.map((f) => ({ listener: f.listener, primary_key: [keyText(f.key)], error: f.error, failed_at: f.failed_at })) };
      }
      if (Date.now() >= deadline) {
        const what =
          seen === undefined
            ? 'no sidecar has read the changes yet (none running?)'
            : [left ? `${left} change(s) not yet computed` : '', backfilling.length ? `backfill of ${backfilling.map((v) => v.name).join(', ')} under way` : '']
                .filter(Boolean)
                .join('; ');
        throw new SuperduperError(`superduper.wait_for: timed out after ${timeoutSeconds} s: ${what}`, {
          code: SQLSTATES.wait_timeout,
          hint: 'Is a sidecar running? Start one with "npx superduper start <uri>" or db.start().',
        });
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    await marks.deleteOne({ _id: id }).catch(() => {});
  }
}
