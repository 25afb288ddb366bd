/**
 * Open cursors: query cursors over a lazy source, and change-stream cursors
 * over the history. Ids are Longs, as the driver expects them; a restart
 * forgets them all, as a restarted server does.
 */
import { calculateObjectSize, Long } from 'bson';
import { RawDoc } from './bson-raw.js';
import type { Position } from './change-log.js';
import type { Doc } from './storage.js';

/** Server cap on one batch's bytes; a batch always has at least one document. */
const BATCH_BYTES = 16 * 1024 * 1024;
const IDLE_MS = 10 * 60 * 1000;

export interface QueryCursor {
  kind: 'query';
  id: bigint;
  ns: string;
  source: Lookahead<RawDoc | Doc>;
  lastUsed: number;
  /** Set during a getMore, so a second one on the same cursor is refused. */
  busy: boolean;
}

export interface ChangeStreamSpec {
  /** null: the whole database (or cluster). */
  db: string | null;
  coll: string | null;
  fullDocument: string;
  fullDocumentBeforeChange: string;
  showExpandedEvents: boolean;
  pipeline: Doc[];
  /**
   * The pipeline's leading `$match`, when it looks only at an event's header
   * (operationType, ns, documentKey, times): tried before the event's
   * documents are read, as the server filters its oplog scan.
   */
  headerMatch?: (event: Doc) => boolean;
}

export interface ChangeCursor {
  kind: 'change';
  id: bigint;
  ns: string;
  spec: ChangeStreamSpec;
  pos: Position;
  lastUsed: number;
  busy: boolean;
}

export type Cursor = QueryCursor | ChangeCursor;

export class CursorRegistry {
  private readonly cursors = new Map<bigint, Cursor>();
  private next = BigInt(Math.floor(Math.random() * 2 ** 40)) * 1000n + 1n;
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  newId(): bigint {
    this.next += 1n;
    return this.next;
  }

  add(c: Cursor): void {
    this.cursors.set(c.id, c);
  }

  get(id: bigint): Cursor | undefined {
    const c = this.cursors.get(id);
    if (c) c.lastUsed = Date.now();
    return c;
  }

  kill(id: bigint): boolean {
    return this.cursors.delete(id);
  }

  killAll(): void {
    this.cursors.clear();
  }

  close(): void {
    clearInterval(this.sweeper);
    this.cursors.clear();
  }

  get size(): number {
    return this.cursors.size;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, c] of this.cursors) if (!c.busy && now - c.lastUsed > IDLE_MS) this.cursors.delete(id);
  }
}

export function longId(id: bigint): Long {
  return Long.fromBigInt(id);
}

function sizeOf(d: RawDoc | Doc): number {
  return d instanceof RawDoc ? d.bytes.length : calculateObjectSize(d);
}

/** An iterator that can look one item ahead, so a batch that ends the results closes its cursor at once. */
export class Lookahead<T> implements Iterator<T> {
  private held: IteratorResult<T> | null = null;
  constructor(private readonly inner: Iterator<T>) {}
  next(): IteratorResult<T> {
    if (this.held) {
      const h = this.held;
      this.held = null;
      return h;
    }
    return this.inner.next();
  }
  hasMore(): boolean {
    if (!this.held) this.held = this.inner.next();
    return !this.held.done;
  }
}

/** The next batch of a source; `done` when the source has nothing left. */
export function takeBatch(source: Lookahead<RawDoc | Doc>, max: number): { batch: (RawDoc | Doc)[]; done: boolean } {
  const batch: (RawDoc | Doc)[] = [];
  let bytes = 0;
  while (batch.length < max) {
    const r = source.next();
    if (r.done) return { batch, done: true };
    batch.push(r.value);
    bytes += sizeOf(r.value);
    if (bytes >= BATCH_BYTES) break;
  }
  return { batch, done: !source.hasMore() };
}

/** Parses a cursor id as the driver sends it (Long, or a number once promoted). */
export function cursorIdOf(v: unknown): bigint {
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'bigint') return v;
  if (v instanceof Long) return v.toBigInt();
  return BigInt(String(v));
}
