/** $out and $merge: an aggregate's results written to a collection, through the same writes as any other. */
import { isPlainDoc } from '../bson-order.js';
import { fail } from '../errors.js';
import { docOf, matchingRecords } from '../query.js';
import { SecondaryIndex } from '../storage.js';
import type { CommandContext } from '../state.js';
import type { Doc } from '../storage.js';
import { withIdFirst } from '../update.js';
import { collectionForWrite, dropCollection, insertDocument, writeRecord } from '../writes.js';

function target(ctx: CommandContext, spec: unknown): [string, string] {
  if (typeof spec === 'string') return [ctx.db, spec];
  if (isPlainDoc(spec)) return [String(spec.db ?? ctx.db), String(spec.coll)];
  return fail('FailedToParse', 'the $out/$merge target must be a collection name or {db, coll}');
}

export function runOutStage(ctx: CommandContext, stage: Doc, docs: Doc[]): void {
  const state = ctx.state;
  if ('$out' in stage) {
    const [db, name] = target(ctx, stage.$out);
    const old = state.storage.collection(db, name);
    const indexes = old?.indexes.map((ix) => ix.spec) ?? [];
    dropCollection(state, db, name);
    const coll = collectionForWrite(state, db, name);
    for (const spec of indexes) coll.addIndex(new SecondaryIndex(spec, null), []);
    for (const d of docs) insertDocument(state, coll, withIdFirst(d));
    return;
  }
  const spec = (typeof stage.$merge === 'string' ? { into: stage.$merge } : stage.$merge) as Doc;
  const [db, name] = target(ctx, spec.into);
  const coll = collectionForWrite(state, db, name);
  const on = spec.on === undefined ? ['_id'] : Array.isArray(spec.on) ? (spec.on as string[]) : [String(spec.on)];
  const whenMatched = spec.whenMatched ?? 'merge';
  const whenNotMatched = spec.whenNotMatched ?? 'insert';
  for (const raw of docs) {
    const d = withIdFirst(raw);
    const q: Doc = {};
    for (const f of on) q[f] = d[f] ?? null;
    const found = matchingRecords(coll, q).next().value;
    if (!found) {
      if (whenNotMatched === 'insert') insertDocument(state, coll, d);
      else if (whenNotMatched === 'fail') fail('BadValue', '$merge could not find a matching document in the target collection for at least one document in the source collection');
      continue;
    }
    const [rec] = found;
    const before = docOf(rec);
    if (whenMatched === 'keepExisting') continue;
    if (whenMatched === 'fail') fail('DuplicateKey', `E11000 duplicate key error collection: ${coll.ns} index: _id_`);
    if (whenMatched === 'replace') {
      writeRecord(state, coll, rec, before, { ...d, _id: before._id }, true);
    } else if (whenMatched === 'merge') {
      const after: Doc = { ...before };
      for (const [k, v] of Object.entries(d)) if (k !== '_id') after[k] = v;
      writeRecord(state, coll, rec, before, after, false);
    } else {
      fail('BadValue', 'pipeline-style whenMatched is not supported by the superduper test emulator');
    }
  }
}
