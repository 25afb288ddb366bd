import { Binary, ObjectId, Timestamp, type Document } from 'mongodb';

/**
 * The types an _id can have, in MongoDB's sort order, each with the query for
 * "the bracket's first values". Range operators compare within one type
 * ($gt: 5 never matches "a"), so a scan of a collection whose _ids mix types
 * reads each bracket in turn, and every query is an _id index range. (A NaN or
 * regular-expression _id, or MinKey/MaxKey, is not read by a backfill; the
 * change stream still follows changes to such documents.)
 */
export const ID_BRACKETS: ReadonlyArray<{ type: string; first: Document }> = [
  { type: 'null', first: { _id: null } },
  { type: 'number', first: { _id: { $gte: -Infinity } } },
  { type: 'string', first: { _id: { $gte: '' } } },
  { type: 'object', first: { _id: { $gte: {} } } },
  { type: 'binData', first: { _id: { $gte: new Binary(Buffer.alloc(0), 0) } } },
  { type: 'objectId', first: { _id: { $gte: new ObjectId('000000000000000000000000') } } },
  { type: 'bool', first: { _id: { $gte: false } } },
  { type: 'date', first: { _id: { $gte: new Date(-8.64e15) } } },
  { type: 'timestamp', first: { _id: { $gte: new Timestamp({ t: 0, i: 0 }) } } },
];

/** The query for the next range of a bracket: after the last _id handed out, or from its start. */
export function rangeQuery(bracket: number, after: { v: unknown } | null): Document {
  const entry = ID_BRACKETS[bracket]!;
  if (after === null) return entry.first;
  // null has one value: after it, the bracket is done.
  if (entry.type === 'null') return { _id: { $in: [] } };
  return { _id: { $gt: after.v } };
}
