/** Dotted field paths, resolved the way index keys and sorts see them: through arrays. */
import { isPlainDoc } from './bson-order.js';

type Doc = Record<string, unknown>;

/**
 * Every value a path reaches; arrays on the way are traversed (each element),
 * and a numeric part may also index an array. Empty when the path reaches nothing.
 */
export function pathValues(doc: unknown, path: string): unknown[] {
  const out: unknown[] = [];
  walk(doc, path.split('.'), 0, out);
  return out;
}

function walk(v: unknown, parts: string[], i: number, out: unknown[]): void {
  if (i === parts.length) {
    out.push(v);
    return;
  }
  const part = parts[i] as string;
  if (Array.isArray(v)) {
    if (/^\d+$/.test(part) && Number(part) < v.length) walk(v[Number(part)], parts, i + 1, out);
    for (const el of v) if (isPlainDoc(el)) walk(el, parts, i, out);
    return;
  }
  if (isPlainDoc(v) && Object.prototype.hasOwnProperty.call(v, part)) walk((v as Doc)[part], parts, i + 1, out);
}

/** Index keys of one field: arrays contribute each element (multikey); missing is null. */
export function indexKeyValues(doc: Doc, path: string): unknown[] {
  const found = pathValues(doc, path);
  if (found.length === 0) return [null];
  const out: unknown[] = [];
  for (const v of found) {
    if (Array.isArray(v)) {
      if (v.length === 0) out.push(undefined);
      else out.push(...v);
    } else out.push(v);
  }
  return out;
}
