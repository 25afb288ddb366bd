/**
 * MongoDB's comparison order across BSON types ("sort order"), used for the
 * `_id` index, sorts and index keys. mingo compares values of one JS type well
 * but orders bson classes (ObjectId, Long, Binary, Timestamp) by their names or
 * their toString(), which is not the server's order.
 */
import { Long } from 'bson';

type Doc = Record<string, unknown>;

/** The bson class name of a value, or '' for plain JS values. */
function bsonType(v: object): string {
  const t = (v as { _bsontype?: unknown })._bsontype;
  return typeof t === 'string' ? t : '';
}

/**
 * Canonical type ranks from the server's documentation ("Comparison/Sort
 * Order"). Numbers of every width share a rank so that 1, 1.0 and Long(1)
 * compare equal, as on the server.
 */
export function typeRank(v: unknown): number {
  if (v === undefined || v === null) return 2;
  switch (typeof v) {
    case 'number':
    case 'bigint':
      return 3;
    case 'string':
      return 4;
    case 'boolean':
      return 9;
    case 'object':
      break;
    default:
      return 20;
  }
  if (Array.isArray(v)) return 6;
  if (v instanceof Date) return 10;
  if (v instanceof RegExp) return 12;
  switch (bsonType(v)) {
    case 'MinKey':
      return 1;
    case 'Long':
    case 'Double':
    case 'Int32':
    case 'Decimal128':
      return 3;
    case 'BSONSymbol':
      return 4;
    case 'Binary':
      return 7;
    case 'ObjectId':
      return 8;
    case 'Timestamp':
      return 11;
    case 'BSONRegExp':
      return 12;
    case 'Code':
      return 13;
    case 'MaxKey':
      return 100;
    default:
      return 5;
  }
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  const t = bsonType(v as object);
  if (t === 'Long') return (v as Long).toNumber();
  if (t === 'Decimal128') return Number.parseFloat(String(v));
  return Number((v as { valueOf(): unknown }).valueOf());
}

function compareNumbers(a: unknown, b: unknown): number {
  // Two Longs beyond 2^53 would collide as doubles; compare them exactly.
  if (a instanceof Long && b instanceof Long) return a.compare(b);
  const x = toNumber(a);
  const y = toNumber(b);
  if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : -1; // NaN sorts below every number
  if (Number.isNaN(y)) return 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

interface ObjectIdLike {
  id: Uint8Array;
  i0?: number;
  i1?: number;
  i2?: number;
  i3?: number;
}

/**
 * bson 7 keeps an ObjectId as four 24-bit words and builds a new Buffer on
 * every `.id`; comparing the words keeps the `_id` B+ tree free of allocation.
 */
function compareObjectIds(a: ObjectIdLike, b: ObjectIdLike): number {
  if (typeof a.i0 === 'number' && typeof b.i0 === 'number') {
    if (a.i0 !== b.i0) return a.i0 < b.i0 ? -1 : 1;
    if (a.i1 !== b.i1) return (a.i1 as number) < (b.i1 as number) ? -1 : 1;
    if (a.i2 !== b.i2) return (a.i2 as number) < (b.i2 as number) ? -1 : 1;
    if (a.i3 !== b.i3) return (a.i3 as number) < (b.i3 as number) ? -1 : 1;
    return 0;
  }
  return compareBytes(a.id, b.id);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isPlainDoc(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof RegExp) && bsonType(v) === '';
}

/** Field-by-field, names and order included: {a:1,b:2} and {b:2,a:1} differ, as on the server. */
function compareDocs(a: Doc, b: Doc): number {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  const n = Math.min(ka.length, kb.length);
  for (let i = 0; i < n; i++) {
    const va = a[ka[i] as string];
    const vb = b[kb[i] as string];
    const r = typeRank(va) - typeRank(vb);
    if (r !== 0) return r < 0 ? -1 : 1;
    const k = compareStrings(ka[i] as string, kb[i] as string);
    if (k !== 0) return k;
    const c = compareBson(va, vb);
    if (c !== 0) return c;
  }
  return ka.length === kb.length ? 0 : ka.length < kb.length ? -1 : 1;
}

export function compareBson(a: unknown, b: unknown): number {
  if (a === b) return 0;
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 1:
    case 2:
    case 100:
      return 0;
    case 3:
      return compareNumbers(a, b);
    case 4:
      return compareStrings(String(a), String(b));
    case 5:
      return compareDocs(a as Doc, b as Doc);
    case 6: {
      const x = a as unknown[];
      const y = b as unknown[];
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = compareBson(x[i], y[i]);
        if (c !== 0) return c;
      }
      return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
    }
    case 7: {
      const x = a as { buffer: Uint8Array; sub_type: number; position: number };
      const y = b as { buffer: Uint8Array; sub_type: number; position: number };
      const xb = x.buffer.subarray(0, x.position);
      const yb = y.buffer.subarray(0, y.position);
      if (xb.length !== yb.length) return xb.length < yb.length ? -1 : 1;
      if (x.sub_type !== y.sub_type) return x.sub_type < y.sub_type ? -1 : 1;
      return compareBytes(xb, yb);
    }
    case 8:
      return compareObjectIds(a as ObjectIdLike, b as ObjectIdLike);
    case 9:
      return a === b ? 0 : a ? 1 : -1;
    case 10: {
      const x = (a as Date).getTime();
      const y = (b as Date).getTime();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 11: {
      const x = a as { t: number; i: number };
      const y = b as { t: number; i: number };
      if (x.t !== y.t) return x.t < y.t ? -1 : 1;
      return x.i === y.i ? 0 : x.i < y.i ? -1 : 1;
    }
    case 12: {
      const x = regexParts(a);
      const y = regexParts(b);
      return compareStrings(x[0], y[0]) || compareStrings(x[1], y[1]);
    }
    default:
      return compareStrings(String(a), String(b));
  }
}

function regexParts(v: unknown): [string, string] {
  if (v instanceof RegExp) return [v.source, v.flags];
  const r = v as { pattern: string; options: string };
  return [r.pattern, r.options];
}

/**
 * A string that is equal for two values exactly when compareBson says they
 * are equal: the key of a unique index's hash map.
 */
export function canonicalKey(v: unknown): string {
  const rank = typeRank(v);
  switch (rank) {
    case 1:
      return 'm';
    case 2:
      return 'z';
    case 100:
      return 'M';
    case 3: {
      if (v instanceof Long) {
        const n = v.toNumber();
        return Number.isSafeInteger(n) ? `n${n}` : `n${v.toString()}`;
      }
      const n = toNumber(v);
      return `n${Object.is(n, -0) ? 0 : n}`;
    }
    case 4:
      return `s${JSON.stringify(String(v))}`;
    case 5: {
      const d = v as Doc;
      return `{${Object.keys(d)
        .map((k) => `${JSON.stringify(k)}:${canonicalKey(d[k])}`)
        .join(',')}}`;
    }
    case 6:
      return `[${(v as unknown[]).map(canonicalKey).join(',')}]`;
    case 7: {
      const x = v as { buffer: Uint8Array; sub_type: number; position: number };
      return `x${x.sub_type}:${Buffer.from(x.buffer.subarray(0, x.position)).toString('hex')}`;
    }
    case 8:
      return `o${(v as { toHexString(): string }).toHexString()}`;
    case 9:
      return v ? 'T' : 'F';
    case 10:
      return `d${(v as Date).getTime()}`;
    case 11:
      return `t${(v as { t: number }).t}:${(v as { i: number }).i}`;
    case 12: {
      const [p, f] = regexParts(v);
      return `r${JSON.stringify(p)}/${f}`;
    }
    default:
      return `?${String(v)}`;
  }
}

export { isPlainDoc };
