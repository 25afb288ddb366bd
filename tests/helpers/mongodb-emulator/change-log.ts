/**
 * The logical clock and the bounded event history (the emulator's oplog) that
 * change streams read, and the resume tokens that point into it.
 *
 * Every write op gets its own tick, so events of one document are strictly
 * ordered by clusterTime. A token encodes the entry's sequence number, which
 * is what resuming compares; the timestamp in it is only informative.
 */
import { Timestamp } from 'bson';
import { fail } from './errors.js';

export type OpType =
  | 'insert'
  | 'update'
  | 'replace'
  | 'delete'
  | 'drop'
  | 'rename'
  | 'dropDatabase'
  | 'create'
  | 'createIndexes'
  | 'dropIndexes';

export interface UpdateDescription {
  updatedFields: Record<string, unknown>;
  removedFields: string[];
  truncatedArrays: { field: string; newSize: number }[];
}

export interface OplogEntry {
  seq: number;
  ts: Timestamp;
  wall: Date;
  op: OpType;
  db: string;
  coll?: string;
  /** documentKey._id */
  id?: unknown;
  /** insert/replace: the document written; update: the post-image, when the collection records them. */
  doc?: Uint8Array;
  /** The pre-image, when the collection records them. */
  pre?: Uint8Array;
  desc?: UpdateDescription;
  to?: { db: string; coll: string };
  /** Expanded events' extra fields (create's options, index specs). */
  extra?: Record<string, unknown>;
}

/** A position in the history: after entry `seq`; `invalidate` marks the invalidate event that follows a drop. */
export interface Position {
  seq: number;
  invalidate: boolean;
}

const TOKEN_PREFIX = '82';

export function compareTs(a: Timestamp, b: Timestamp): number {
  if (a.t !== b.t) return a.t < b.t ? -1 : 1;
  return a.i === b.i ? 0 : a.i < b.i ? -1 : 1;
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/**
 * `82` + timestamp + sequence number + the history's epoch + invalidate flag,
 * in fixed-width hex, so that string order is history order, as the server's
 * tokens are. The epoch tells this history's tokens from another emulator's
 * (a standalone one started again without its state).
 */
export function encodeToken(ts: Timestamp, pos: Position, epoch: number): { _data: string } {
  return { _data: `${TOKEN_PREFIX}${hex(ts.t, 8)}${hex(ts.i, 8)}${hex(pos.seq, 14)}${hex(epoch, 8)}${pos.invalidate ? '01' : '00'}` };
}

export function decodeToken(token: unknown): Position & { epoch: number } {
  const data = (token as { _data?: unknown } | null)?._data;
  if (typeof data !== 'string' || data.length !== 2 + 16 + 14 + 8 + 2 || !data.startsWith(TOKEN_PREFIX) || !/^[0-9a-f]+$/.test(data)) {
    fail('InvalidResumeToken', `Invalid resume token: ${JSON.stringify(token)}`);
  }
  return { seq: Number.parseInt(data.slice(18, 32), 16), epoch: Number.parseInt(data.slice(32, 40), 16), invalidate: data.slice(40) === '01' };
}

export class ChangeLog {
  private entries: (OplogEntry | undefined)[] = [];
  private head = 0;
  private firstSeq = 1;
  private nextSeq = 1;
  private lastTrimmed: Timestamp | null = null;
  private waiters = new Set<() => void>();
  private clockT = 0;
  private clockI = 0;

  readonly epoch = Math.floor(Math.random() * 0xffffffff);

  constructor(private readonly capacity: number) {}

  token(ts: Timestamp, pos: Position): { _data: string } {
    return encodeToken(ts, pos, this.epoch);
  }

  /** The latest cluster time (what reads return as operationTime). */
  now(): Timestamp {
    if (this.clockT === 0) this.tick();
    return new Timestamp({ t: this.clockT, i: this.clockI });
  }

  private tick(): Timestamp {
    const secs = Math.floor(Date.now() / 1000);
    if (secs > this.clockT) {
      this.clockT = secs;
      this.clockI = 1;
    } else {
      this.clockI += 1;
    }
    return new Timestamp({ t: this.clockT, i: this.clockI });
  }

  append(entry: Omit<OplogEntry, 'seq' | 'ts' | 'wall'>): OplogEntry {
    const full = entry as OplogEntry;
    full.seq = this.nextSeq++;
    full.ts = this.tick();
    full.wall = new Date();
    this.entries.push(full);
    if (this.nextSeq - this.firstSeq > this.capacity) this.trimOne();
    if (this.waiters.size) this.wakeAll();
    return full;
  }

  private trimOne(): void {
    const e = this.entries[this.head];
    this.entries[this.head] = undefined;
    this.head += 1;
    this.firstSeq += 1;
    if (e) this.lastTrimmed = e.ts;
    if (this.head > 65536 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  get(seq: number): OplogEntry | undefined {
    if (seq < this.firstSeq || seq >= this.nextSeq) return undefined;
    return this.entries[this.head + (seq - this.firstSeq)];
  }

  /** Fails like the server when events after the token were already dropped from the history, or it is not of this history. */
  checkResumable(pos: Position & { epoch: number }): void {
    if (pos.epoch !== this.epoch || pos.seq > this.lastSeq || pos.seq < this.firstSeq - 1) {
      fail('ChangeStreamHistoryLost', 'Resume of change stream was not possible, as the resume point may no longer be in the oplog.');
    }
  }

  /** The position just before the first entry at or after `ts`. */
  positionAt(ts: Timestamp): Position {
    if (this.lastTrimmed && compareTs(ts, this.lastTrimmed) <= 0) {
      fail('ChangeStreamHistoryLost', 'Resume of change stream was not possible, as the resume point may no longer be in the oplog.');
    }
    // Binary search: entries are in ts order.
    let lo = this.firstSeq;
    let hi = this.nextSeq;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const e = this.get(mid) as OplogEntry;
      if (compareTs(e.ts, ts) < 0) lo = mid + 1;
      else hi = mid;
    }
    return { seq: lo - 1, invalidate: false };
  }

  /** The timestamp to put in a token for a position. */
  tsAt(seq: number): Timestamp {
    return this.get(seq)?.ts ?? this.now();
  }

  /** Resolves at the next append, after `ms`, or at wakeAll(), whichever first. */
  waitForAppend(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
    });
  }

  wakeAll(): void {
    for (const w of [...this.waiters]) w();
  }
}
