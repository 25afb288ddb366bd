/**
 * Backend-neutral data access for the conformance tests that every backend
 * passes, SQL or not (tests/conformance/any-store/): a "source" is a table on
 * PostgreSQL and PGlite, a collection on MongoDB, with an integer key `id`
 * (the primary key; MongoDB's `_id`) and plain fields. The test reads and
 * writes its data through this, as an application would through its own
 * driver, and declares listeners with `on(name)` in place of `table:` or
 * `collection:`. Everything else (apply, start, waitFor, status, failures)
 * is the product's own API, the same on every backend.
 */
import type { Superduper } from '../../src/client.js';
import { quoteIdent } from '../../src/identifiers.js';
import { connectTest, createTestDatabase } from './database.js';
import { type AnyDocument, connectMongoTest, createMongoTestDatabase } from './mongodb.js';

export type Row = { id: number } & Record<string, unknown>;

export interface TestStore {
  backend: 'postgres' | 'pglite' | 'mongodb';
  /** The database's connection string, for sidecar processes. */
  uri: string;
  /** Connected, with superduper installed. */
  db: Superduper;
  /** The listener spec's field naming a source. */
  on(source: string): { table: string } | { collection: string };
  /** A source with these fields (`text` or `real`), holding `rows`. */
  createSource(source: string, fields: Record<string, 'text' | 'real'>, rows: Row[]): Promise<void>;
  insert(source: string, rows: Row[]): Promise<void>;
  /** Sets fields of the rows with these ids. */
  update(source: string, ids: number[], fields: Record<string, unknown>): Promise<void>;
  delete(source: string, ids: number[]): Promise<void>;
  /** The source's rows by id. */
  rows(source: string): Promise<Map<number, Row>>;
  /** A listener's outputs by source id (vectors as arrays of numbers). */
  outputs(listener: string): Promise<Map<number, unknown>>;
  close(): Promise<void>;
}

/** A fresh database on the backend this test process runs on (its vitest project sets SUPERDUPER_TEST_BACKEND). */
export async function createTestStore(label: string): Promise<TestStore> {
  return process.env.SUPERDUPER_TEST_BACKEND === 'mongodb' ? mongoStore(label) : sqlStore(label);
}

async function sqlStore(label: string): Promise<TestStore> {
  const database = await createTestDatabase(label);
  const db = await connectTest(database);
  const sql = database.sql;
  const q = quoteIdent;
  const store: TestStore = {
    backend: database.embedded ? 'pglite' : 'postgres',
    uri: database.uri,
    db,
    on: (source) => ({ table: source }),
    async createSource(source, fields, rows) {
      const columns = Object.entries(fields).map(([name, type]) => `${q(name)} ${type}`);
      await sql.query(`CREATE TABLE ${q(source)} (id bigint PRIMARY KEY, ${columns.join(', ')})`);
      await store.insert(source, rows);
    },
    async insert(source, rows) {
      if (rows.length === 0) return;
      // One statement per thousand rows, the rows as one JSON parameter.
      for (let start = 0; start < rows.length; start += 1000) {
        await sql.query(`INSERT INTO ${q(source)} SELECT * FROM json_populate_recordset(NULL::${q(source)}, $1)`, [JSON.stringify(rows.slice(start, start + 1000))]);
      }
    },
    async update(source, ids, fields) {
      const sets = Object.keys(fields).map((name, i) => `${q(name)} = $${i + 2}`);
      await sql.query(`UPDATE ${q(source)} SET ${sets.join(', ')} WHERE id = ANY($1)`, [ids, ...Object.values(fields)]);
    },
    async delete(source, ids) {
      await sql.query(`DELETE FROM ${q(source)} WHERE id = ANY($1)`, [ids]);
    },
    async rows(source) {
      const result = await sql.query<Row>(`SELECT * FROM ${q(source)}`);
      return new Map(result.rows.map((row) => [Number(row.id), { ...row, id: Number(row.id) }]));
    },
    async outputs(listener) {
      // pgvector's text form is a JSON array; other types (real[], text, jsonb) have a JSON form of their own.
      const result = await sql.query<{ id: string; output: unknown }>(
        `SELECT id, CASE WHEN pg_typeof(output)::text = 'vector' THEN output::text::jsonb ELSE to_jsonb(output) END AS output FROM superduper.${q(`out_${listener}`)}`,
      );
      return new Map(result.rows.map((row) => [Number(row.id), row.output]));
    },
    async close() {
      await db.close();
      await database.drop();
    },
  };
  return store;
}

async function mongoStore(label: string): Promise<TestStore> {
  const database = await createMongoTestDatabase(label);
  const db = await connectMongoTest(database);
  const collection = (name: string) => database.db.collection<AnyDocument>(name);
  const asDocument = ({ id, ...fields }: Row): AnyDocument => ({ _id: id, ...fields });
  const store: TestStore = {
    backend: 'mongodb',
    uri: database.uri,
    db,
    on: (source) => ({ collection: source }),
    async createSource(source, _fields, rows) {
      await database.db.createCollection(source);
      await store.insert(source, rows);
    },
    async insert(source, rows) {
      for (let start = 0; start < rows.length; start += 1000) await collection(source).insertMany(rows.slice(start, start + 1000).map(asDocument));
    },
    async update(source, ids, fields) {
      await collection(source).updateMany({ _id: { $in: ids } } as AnyDocument, { $set: fields });
    },
    async delete(source, ids) {
      await collection(source).deleteMany({ _id: { $in: ids } } as AnyDocument);
    },
    async rows(source) {
      const docs = await collection(source).find({}).toArray();
      return new Map(docs.map(({ _id, ...fields }) => [Number(_id), { id: Number(_id), ...fields }]));
    },
    async outputs(listener) {
      const docs = await database.db.collection<AnyDocument>(`superduper.outputs.${listener}`).find({}).toArray();
      return new Map(docs.map((doc) => [Number(doc._id), doc.output]));
    },
    async close() {
      await db.close();
      await database.drop();
    },
  };
  return store;
}
