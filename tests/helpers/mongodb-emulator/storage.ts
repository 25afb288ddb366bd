/**
 * Databases, collections, views and indexes. A collection keeps each document
 * as the BSON bytes it was written with (field order and number widths as the
 * client sent them), in a B+ tree by `_id` (ordered scans and lookups in
 * O(log n)) and a map in record order (a find without sort returns documents in
 * insertion order, as WiredTiger's record ids do).
 */
import { createRequire } from 'node:module';
import { UUID } from 'bson';
import type * as btreeModule from 'sorted-btree';
import { canonicalKey, compareBson } from './bson-order.js';
import { fail } from './errors.js';
import { indexKeyValues } from './paths.js';
import { formatValue } from './format.js';

// sorted-btree is CommonJS with `exports.default`; loading it through require
// gives the same class under tsx, vitest and plain node.
type BTree<K, V> = btreeModule.default<K, V>;
const BTree = (
  createRequire(import.meta.url)('sorted-btree') as {
    default: new <K, V>(entries: undefined, compare: (a: K, b: K) => number, maxNodeSize?: number) => BTree<K, V>;
  }
).default;

export type Doc = Record<string, unknown>;

export interface DocRecord {
  rid: number;
  id: unknown;
  raw: Uint8Array;
  alive: boolean;
}

export interface IndexSpec extends Doc {
  v: number;
  key: Doc;
  name: string;
}

export type Matcher = (doc: Doc) => boolean;

export class SecondaryIndex {
  readonly fields: string[];
  readonly unique: boolean;
  private readonly sparse: boolean;
  private readonly keys = new Map<string, number>();

  constructor(
    readonly spec: IndexSpec,
    private readonly partial: Matcher | null,
  ) {
    this.fields = Object.keys(spec.key);
    this.unique = spec.unique === true;
    this.sparse = spec.sparse === true;
  }

  /** The index keys a document has, or null when the index leaves it out (sparse, partial). */
  keysOf(doc: Doc): string[] | null {
    if (this.partial && !this.partial(doc)) return null;
    const perField = this.fields.map((f) => indexKeyValues(doc, f));
    if (this.sparse && this.fields.every((f) => !hasPath(doc, f))) return null;
    let keys = [''];
    for (const vs of perField) {
      const next: string[] = [];
      for (const k of keys) for (const v of vs) next.push(`${k}|${canonicalKey(v)}`);
      keys = next;
    }
    return [...new Set(keys)];
  }

  /** The rid already holding one of these keys, other than `self`. */
  conflict(keys: string[], self: number): number | undefined {
    if (!this.unique) return undefined;
    for (const k of keys) {
      const rid = this.keys.get(k);
      if (rid !== undefined && rid !== self) return rid;
    }
    return undefined;
  }

  add(keys: string[] | null, rid: number): void {
    if (!this.unique || !keys) return;
    for (const k of keys) this.keys.set(k, rid);
  }

  remove(keys: string[] | null, rid: number): void {
    if (!this.unique || !keys) return;
    for (const k of keys) if (this.keys.get(k) === rid) this.keys.delete(k);
  }

  clear(): void {
    this.keys.clear();
  }
}

function hasPath(doc: Doc, path: string): boolean {
  let v: unknown = doc;
  for (const p of path.split('.')) {
    if (typeof v !== 'object' || v === null || !(p in (v as Doc))) return false;
    v = (v as Doc)[p];
  }
  return true;
}

export class Collection {
  readonly byId: BTree<unknown, DocRecord> = new BTree<unknown, DocRecord>(undefined, compareBson, 128);
  readonly byRid = new Map<number, DocRecord>();
  indexes: SecondaryIndex[] = [];
  readonly uuid = new UUID();
  private nextRid = 1;

  constructor(
    public db: string,
    public name: string,
    public options: Doc,
  ) {}

  get ns(): string {
    return `${this.db}.${this.name}`;
  }

  get size(): number {
    return this.byRid.size;
  }

  get hasUniqueIndexes(): boolean {
    return this.indexes.some((i) => i.unique);
  }

  /** Pre- and post-images for change streams, as `changeStreamPreAndPostImages: {enabled: true}` asks. */
  get recordsImages(): boolean {
    return (this.options.changeStreamPreAndPostImages as { enabled?: unknown } | undefined)?.enabled === true;
  }

  findById(id: unknown): DocRecord | undefined {
    return this.byId.get(id);
  }

  private duplicate(index: string, keyPattern: Doc, keyValue: Doc): never {
    const shown = Object.entries(keyValue)
      .map(([k, v]) => `${k}: ${formatValue(v)}`)
      .join(', ');
    fail('DuplicateKey', `E11000 duplicate key error collection: ${this.ns} index: ${index} dup key: { ${shown} }`, { keyPattern, keyValue });
  }

  private keyValue(index: SecondaryIndex, doc: Doc): Doc {
    const out: Doc = {};
    for (const f of index.fields) out[f] = indexKeyValues(doc, f)[0] ?? null;
    return out;
  }

  /** Checks every unique index first, so a refused document leaves nothing behind. */
  insert(doc: Doc, raw: Uint8Array): DocRecord {
    const id = doc._id;
    if (this.byId.has(id)) this.duplicate('_id_', { _id: 1 }, { _id: id });
    let keys: (string[] | null)[] = [];
    if (this.indexes.length) {
      keys = this.indexes.map((ix) => ix.keysOf(doc));
      this.indexes.forEach((ix, i) => {
        const k = keys[i];
        if (k && ix.conflict(k, -1) !== undefined) this.duplicate(ix.spec.name, ix.spec.key, this.keyValue(ix, doc));
      });
    }
    const rec: DocRecord = { rid: this.nextRid++, id, raw, alive: true };
    this.byId.set(id, rec);
    this.byRid.set(rec.rid, rec);
    this.indexes.forEach((ix, i) => ix.add(keys[i] ?? null, rec.rid));
    return rec;
  }

  replace(rec: DocRecord, oldDoc: Doc, newDoc: Doc, raw: Uint8Array): void {
    if (this.indexes.length) {
      const oldKeys = this.indexes.map((ix) => ix.keysOf(oldDoc));
      const newKeys = this.indexes.map((ix) => ix.keysOf(newDoc));
      this.indexes.forEach((ix, i) => {
        const k = newKeys[i];
        if (k && ix.conflict(k, rec.rid) !== undefined) this.duplicate(ix.spec.name, ix.spec.key, this.keyValue(ix, newDoc));
      });
      this.indexes.forEach((ix, i) => {
        ix.remove(oldKeys[i] ?? null, rec.rid);
        ix.add(newKeys[i] ?? null, rec.rid);
      });
    }
    rec.raw = raw;
  }

  remove(rec: DocRecord, oldDoc: Doc | null): void {
    if (oldDoc) for (const ix of this.indexes) ix.remove(ix.keysOf(oldDoc), rec.rid);
    this.byId.delete(rec.id);
    this.byRid.delete(rec.rid);
    rec.alive = false;
  }

  /** Builds a new index over the documents there, refusing it like the server if they break its uniqueness. */
  addIndex(index: SecondaryIndex, docs: Iterable<[DocRecord, Doc]>): void {
    if (index.unique) {
      for (const [rec, doc] of docs) {
        const keys = index.keysOf(doc);
        if (keys && index.conflict(keys, rec.rid) !== undefined) {
          index.clear();
          this.duplicate(index.spec.name, index.spec.key, this.keyValue(index, doc));
        }
        index.add(keys, rec.rid);
      }
    }
    this.indexes.push(index);
  }
}

export interface View {
  name: string;
  viewOn: string;
  pipeline: Doc[];
  uuid: UUID;
}

export class Database {
  readonly collections = new Map<string, Collection>();
  readonly views = new Map<string, View>();
  constructor(readonly name: string) {}
}

export class Storage {
  readonly dbs = new Map<string, Database>();

  db(name: string): Database | undefined {
    return this.dbs.get(name);
  }

  ensureDb(name: string): Database {
    let d = this.dbs.get(name);
    if (!d) {
      d = new Database(name);
      this.dbs.set(name, d);
    }
    return d;
  }

  collection(db: string, name: string): Collection | undefined {
    return this.dbs.get(db)?.collections.get(name);
  }

  view(db: string, name: string): View | undefined {
    return this.dbs.get(db)?.views.get(name);
  }

  /** Drops a database that no longer holds anything, as the server forgets it. */
  forgetIfEmpty(db: string): void {
    const d = this.dbs.get(db);
    if (d && d.collections.size === 0 && d.views.size === 0) this.dbs.delete(db);
  }
}
