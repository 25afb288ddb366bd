import { Long, ObjectId, Timestamp } from 'bson';
import { Query } from 'mingo/query';
import { update as mingoUpdate, type Modifier } from 'mingo/updater';
import { describe, expect, it } from 'vitest';
import { compareBson } from '../../helpers/mongodb-emulator/bson-order.js';
import { mingoOptions } from '../../helpers/mongodb-emulator/query.js';
import { compileSimpleFilter } from '../../helpers/mongodb-emulator/simple-filter.js';
import { applySimpleUpdate } from '../../helpers/mongodb-emulator/simple-update.js';

// The emulator matches plain filters and applies plain updates without mingo,
// for speed. These tests hold the fast paths to mingo's answers (which the
// driver-level tests in emulator.test.ts hold to the server's) on every
// combination of a grid of documents, filters and updates.

type Doc = Record<string, unknown>;
const oid = new ObjectId('64b7f0000000000000000001');

const documents: Doc[] = [
  { _id: 1, a: 5, s: 'x', n: null, sub: { b: 2, c: 'y' } },
  { _id: 2, a: 7.5, s: 'y', sub: { b: 3 } },
  { _id: 'k', a: '5', s: 'x', sub: 'not a document' },
  { _id: { l: 1, k: '"a"' }, a: true, d: new Date(5), o: oid },
  { _id: oid, a: [5, 6], sub: [{ b: 2 }, { b: 4 }] },
  { _id: 3, _seq: '00000000000000a0', a: 6, t: new Timestamp({ t: 1, i: 2 }) },
  { _id: 4 },
];

const filters: Doc[] = [
  { _id: 1 },
  { _id: { l: 1, k: '"a"' } },
  { a: 5 },
  { a: '5' },
  { a: { $gt: 5 } },
  { a: { $gte: 5, $lt: 8 } },
  { a: { $lte: 'z' } },
  { a: { $ne: 5 } },
  { a: { $in: [5, '5', true] } },
  { a: { $nin: [5, 7.5] } },
  { n: null },
  { n: { $exists: true } },
  { n: { $exists: false } },
  { missing: { $ne: null } },
  { 'sub.b': 2 },
  { 'sub.b': { $gt: 2 } },
  { 'sub.c': { $exists: false } },
  { d: { $gt: new Date(1) } },
  { o: oid },
  { t: { $gte: new Timestamp({ t: 1, i: 0 }) } },
  { _id: 3, $or: [{ _seq: { $lt: '00000000000000b0' } }, { _seq: { $exists: false } }] },
  { _id: 4, $or: [{ _seq: { $lt: '00000000000000b0' } }, { _seq: { $exists: false } }] },
  { $and: [{ a: { $exists: true } }, { s: 'x' }] },
  { $nor: [{ s: 'x' }, { a: 7.5 }] },
  { sub: { b: 3 } },
];

describe('the emulator matches plain filters as mingo does', () => {
  for (const filter of filters) {
    it(JSON.stringify(filter), () => {
      const mingo = new Query(filter, mingoOptions());
      const simple = compileSimpleFilter(filter, () => (doc) => mingo.test(doc));
      expect(simple, 'a filter of plain comparisons takes the fast path').not.toBeNull();
      for (const doc of documents) expect(simple!(doc), JSON.stringify(doc)).toBe(mingo.test(doc));
    });
  }

  // Where mingo and the server differ, the fast path answers as the server does.
  it('compares numbers across types and documents in field order, as the server does', () => {
    const full = () => () => false;
    expect(compileSimpleFilter({ a: 5 }, full)!({ _id: 1, a: new Long(5) }), 'NumberLong(5) equals 5').toBe(true);
    expect(compileSimpleFilter({ a: { $lt: 6 } }, full)!({ _id: 1, a: new Long(5) })).toBe(true);
    expect(compileSimpleFilter({ _id: { k: 'a', l: 1 } }, full)!({ _id: { l: 1, k: 'a' } }), 'field order matters').toBe(false);
    expect(compileSimpleFilter({ _id: { l: 1, k: 'a' } }, full)!({ _id: { l: 1, k: 'a' } })).toBe(true);
  });

  it('declines filters it does not know, for mingo to match', () => {
    const full = () => () => true;
    expect(compileSimpleFilter({ a: /x/ }, full)).toBeNull();
    expect(compileSimpleFilter({ a: { $regex: 'x' } }, full)).toBeNull();
    expect(compileSimpleFilter({ a: { $elemMatch: { $gt: 1 } } }, full)).toBeNull();
    expect(compileSimpleFilter({ a: [5, 6] }, full)).toBeNull();
    expect(compileSimpleFilter({ a: { $gt: null } }, full)).toBeNull();
    expect(compileSimpleFilter({ $expr: { $eq: ['$a', 5] } }, full)).toBeNull();
    expect(compileSimpleFilter({ 'a.$': 1 }, full)).toBeNull();
  });

  it('hands documents with arrays on the path to the full matcher', () => {
    let asked = 0;
    const simple = compileSimpleFilter({ 'sub.b': 4 }, () => {
      asked++;
      return () => true;
    })!;
    expect(simple(documents[4]!)).toBe(true);
    expect(simple(documents[0]!)).toBe(false);
    expect(asked).toBe(1);
  });
});

const updates: Doc[] = [
  { $set: { a: 9 } },
  { $set: { a: 5 } },
  { $set: { 'sub.b': 10, z: [1, 2] } },
  { $set: { 'x.y.z': 1 } },
  { $set: { output: [0.5, 0.25], _seq: '00000000000000b0', _input: 'h', _computed_at: new Date(9) } },
  { $unset: { s: '' } },
  { $unset: { 'sub.c': '', nothing: '' } },
  { $inc: { a: 1 } },
  { $inc: { counter: 2 } },
  { $inc: { 'sub.b': 0 } },
  { $set: { s: 'q' }, $inc: { 'x.n': 1 }, $unset: { n: '' } },
];

describe('the emulator applies plain updates as mingo does', () => {
  for (const modifier of updates) {
    it(JSON.stringify(modifier), () => {
      let applied = 0;
      for (const original of documents) {
        const viaMingo = structuredClone(original);
        const viaSimple = structuredClone(original);
        let mingoChanged: boolean;
        try {
          const before = structuredClone(original);
          mingoChanged = mingoUpdate(viaMingo, modifier as Modifier<Doc>, undefined, undefined, { queryOptions: mingoOptions() }).length > 0 && compareBson(before, viaMingo) !== 0;
        } catch {
          // mingo refuses (e.g. $inc of a string): the fast path must decline and leave the document alone.
          expect(applySimpleUpdate(viaSimple, modifier), JSON.stringify(original)).toBeNull();
          expect(viaSimple).toEqual(original);
          continue;
        }
        const result = applySimpleUpdate(viaSimple, modifier);
        if (result === null) {
          expect(viaSimple, 'declined without touching the document').toEqual(original);
          continue;
        }
        applied++;
        expect(viaSimple, JSON.stringify(original)).toEqual(viaMingo);
        expect(Object.keys(viaSimple)).toEqual(Object.keys(viaMingo));
        expect(result.changed, JSON.stringify(original)).toBe(mingoChanged);
      }
      expect(applied, 'the fast path applied the update to some document').toBeGreaterThan(0);
    });
  }

  it('declines what only mingo applies, leaving the document untouched', () => {
    const doc = { _id: 1, a: [1, 2], s: 'x', sub: 'text' };
    for (const modifier of [{ $set: { 'a.0': 5 } }, { $set: { 'a.$': 5 } }, { $push: { a: 3 } }, { $set: { _id: 2 } }, { $inc: { s: 1 } }, { $set: { 'sub.b': 1 } }, { $set: { x: 1, 'x.y': 2 } }]) {
      const copy = structuredClone(doc);
      expect(applySimpleUpdate(copy, modifier), JSON.stringify(modifier)).toBeNull();
      expect(copy).toEqual(doc);
    }
  });
});
