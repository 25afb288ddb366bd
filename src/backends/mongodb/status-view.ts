import type { Document } from 'mongodb';
import { COLLECTIONS } from './names.js';

/**
 * superduper.status, for mongosh: one document per listener version, like
 * PostgreSQL's superduper.status view. Counting by $lookup reads the listener's
 * queue and failures, which are small unless the sidecars are far behind;
 * db.status() in TypeScript counts with indexed queries instead.
 */
export function statusPipeline(): Document[] {
  const count = (from: string, as: string) => ({ $lookup: { from, localField: '_id', foreignField: 'listener_id', as } });
  return [
    { $match: { state: { $in: ['current', 'building', 'frozen', 'stopped'] } } },
    count(COLLECTIONS.queue, 'queued'),
    count(COLLECTIONS.failures, 'failed_rows'),
    {
      $project: {
        _id: 0,
        listener: '$name',
        version: 1,
        state: 1,
        model: 1,
        source: '$collection',
        outputs: '$outputs_view',
        pending: { $size: '$queued' },
        in_flight: { $size: { $filter: { input: '$queued', as: 'entry', cond: { $gt: ['$$entry.owner', null] } } } },
        failed: { $size: '$failed_rows' },
        backfill_total: '$backfill.total',
        backfill_remaining: { $max: [0, { $subtract: ['$backfill.total', '$backfill.written'] }] },
        backfill_done: '$backfill.done',
        note: 1,
      },
    },
    { $sort: { listener: 1, version: 1 } },
  ];
}
