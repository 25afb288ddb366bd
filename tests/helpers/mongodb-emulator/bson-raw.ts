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
