/**
 * `$set`, `$unset` and `$inc` on plain field paths, applied without mingo:
 * the updates the product and its benchmarks send by the thousand. mingo's
 * updater copies its operator tables on every call, which made each upsert
 * cost a quarter of a millisecond. Anything it cannot apply exactly as the
 * server would (positional or numeric path parts, arrays on the way,
 * conflicting paths, non-numeric `$inc`, `_id`) it declines, before touching
 * the document, and mingo applies the update instead.
 */
import { compareBson, isPlainDoc } from './bson-order.js';

type Doc = Record<string, unknown>;

interface Step {
  op: '$set' | '$unset' | '$inc';
  parts: string[];
  operand: unknown;
}

const SIMPLE_OPERATORS = new Set(['$set', '$unset', '$inc']);

function plan(modifier: Doc): Step[] | null {
  const steps: Step[] = [];
  for (const [op, arg] of Object.entries(modifier)) {
    if (!SIMPLE_OPERATORS.has(op) || !isPlainDoc(arg)) return null;
    for (const [path, operand] of Object.entries(arg)) {
      const parts = path.split('.');
      if (parts[0] === '_id' || parts.some((p) => p === '' || p.startsWith('$') || /^\d+$/.test(p))) return null;
      if (op === '$inc' && typeof operand !== 'number') return null;
      steps.push({ op: op as Step['op'], parts, operand });
    }
  }
  // Two paths where one is, or is inside, the other conflict: the server refuses, in mingo's words.
  const paths = steps.map((s) => s.parts.join('.')).sort();
  for (let i = 1; i < paths.length; i++) {
    const [a, b] = [paths[i - 1]!, paths[i]!];
    if (a === b || b.startsWith(`${a}.`)) return null;
  }
  return steps;
}

/** The document holding a path's last part, creating plain documents on the way when `create`; null when something else is in the way. */
function parentOf(doc: Doc, parts: string[], create: boolean): Doc | null | undefined {
  let at: Doc = doc;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = at[parts[i]!];
    if (next === undefined) {
      if (!create) return undefined;
      return at; // created on apply; nothing in the way
    }
    if (!isPlainDoc(next)) return null;
    at = next;
  }
  return at;
}

function ensureParent(doc: Doc, parts: string[]): Doc {
  let at: Doc = doc;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i]!;
    if (at[p] === undefined) at[p] = {};
    at = at[p] as Doc;
  }
  return at;
}

/** Applies the modifier in place; null when it is not one this path handles (the document untouched). */
export function applySimpleUpdate(doc: Doc, modifier: Doc): { changed: boolean } | null {
  const steps = plan(modifier);
  if (!steps) return null;
  for (const step of steps) {
    const parent = parentOf(doc, step.parts, step.op !== '$unset');
    if (parent === null) return null;
    if (step.op === '$inc' && parent) {
      const current = parent[step.parts.at(-1)!];
      if (current !== undefined && typeof current !== 'number') return null;
    }
  }
  let changed = false;
  for (const step of steps) {
    const last = step.parts.at(-1)!;
    if (step.op === '$unset') {
      const parent = parentOf(doc, step.parts, false);
      if (parent && Object.prototype.hasOwnProperty.call(parent, last)) {
        delete parent[last];
        changed = true;
      }
      continue;
    }
    const parent = ensureParent(doc, step.parts);
    const had = Object.prototype.hasOwnProperty.call(parent, last);
    const before = parent[last];
    const after = step.op === '$inc' ? ((before as number | undefined) ?? 0) + (step.operand as number) : step.operand;
    if (had && compareBson(before, after) === 0 && sameKind(before, after)) continue;
    parent[last] = after;
    changed = true;
  }
  return { changed };
}

/** Equal by compareBson yet stored differently (a number and a Long of the same value) counts as a change. */
export function sameKind(x: unknown, y: unknown): boolean {
  return Array.isArray(x) === Array.isArray(y) && typeof x === typeof y;
}
