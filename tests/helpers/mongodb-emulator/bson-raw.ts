/**
 * Replies that embed stored documents byte for byte. Stored documents are kept
 * as the BSON the client sent, so a find over a million of them never
 * deserializes and re-serializes them; only the envelope around them is built.
 */
import { serialize } from 'bson';

export class RawDoc {
  constructor(readonly bytes: Uint8Array) {}
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function containsRaw(v: unknown, depth = 0): boolean {
  if (v instanceof RawDoc) return true;
  if (depth > 4) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (containsRaw(x, depth + 1)) return true;
    return false;
  }
  if (isPlain(v)) {
    for (const k in v) if (containsRaw(v[k], depth + 1)) return true;
  }
  return false;
}

function element(type: number, name: string, body: Uint8Array): Uint8Array[] {
  return [Uint8Array.of(type), Buffer.from(`${name}\0`, 'utf8'), body];
}

function frame(parts: Uint8Array[]): Buffer {
  let size = 5;
  for (const p of parts) size += p.length;
  const out = Buffer.allocUnsafe(size);
  out.writeInt32LE(size, 0);
  let at = 4;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  out[at] = 0;
  return out;
}

function encodeEntries(entries: Iterable<[string, unknown]>): Buffer {
  const parts: Uint8Array[] = [];
  for (const [key, value] of entries) {
    if (value === undefined) continue;
    if (value instanceof RawDoc) parts.push(...element(0x03, key, value.bytes));
    else if (Array.isArray(value) && containsRaw(value)) parts.push(...element(0x04, key, encodeEntries(value.map((x, i) => [String(i), x]))));
    else if (isPlain(value) && containsRaw(value)) parts.push(...element(0x03, key, encodeEntries(Object.entries(value))));
    else {
      const one = serialize({ [key]: value });
      parts.push(one.subarray(4, one.length - 1));
    }
  }
  return frame(parts);
}

/** BSON of a reply whose values may include RawDoc anywhere in plain objects and arrays. */
export function encodeDocument(doc: Record<string, unknown>): Buffer {
  if (!containsRaw(doc)) return Buffer.from(serialize(doc, { ignoreUndefined: true }));
  return encodeEntries(Object.entries(doc));
}

/** Bytes of an element's value, by BSON type, starting at `at` (just after the name). */
function valueSize(buf: Uint8Array, view: DataView, type: number, at: number): number {
  switch (type) {
    case 0x01:
    case 0x09:
    case 0x11:
    case 0x12:
      return 8;
    case 0x02:
    case 0x0d:
    case 0x0e:
      return 4 + view.getInt32(at, true);
    case 0x03:
    case 0x04:
    case 0x0f:
      return view.getInt32(at, true);
    case 0x05:
      return 5 + view.getInt32(at, true);
    case 0x06:
    case 0x0a:
    case 0x7f:
    case 0xff:
      return 0;
    case 0x07:
      return 12;
    case 0x08:
      return 1;
    case 0x0b: {
      const a = buf.indexOf(0, at);
      return buf.indexOf(0, a + 1) + 1 - at;
    }
    case 0x0c:
      return 4 + view.getInt32(at, true) + 12;
    case 0x10:
      return 4;
    case 0x13:
      return 16;
    default:
      throw new Error(`unknown BSON type 0x${type.toString(16)}`);
  }
}

/** Where the top-level `_id` element of a document is, without deserializing it. */
export function findIdElement(raw: Uint8Array): { start: number; end: number; type: number } | null {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const stop = raw.length - 1;
  let at = 4;
  while (at < stop) {
    const type = raw[at] as number;
    const nameEnd = raw.indexOf(0, at + 1);
    const isId = nameEnd - at - 1 === 3 && raw[at + 1] === 0x5f && raw[at + 2] === 0x69 && raw[at + 3] === 0x64;
    const end = nameEnd + 1 + valueSize(raw, view, type, nameEnd + 1);
    if (isId) return { start: at, end, type };
    at = end;
  }
  return null;
}

/** A document made of these parts, each a run of encoded elements. */
export function documentOf(parts: Uint8Array[]): Buffer {
  return frame(parts);
}
