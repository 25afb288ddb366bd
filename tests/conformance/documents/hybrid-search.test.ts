/**
 * superduper.hybrid(): vector search and PostgreSQL's full-text search over the
 * chunks of a few documents, fused by reciprocal rank fusion; measured on a
 * small retrieval set (chunk hit@5 for each), with filters, weights, k, and the
 * errors of bad arguments.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { DOCUMENTS, QUESTIONS, documentText } from '../../fixtures/retrieval-set.js';

let database: TestDatabase;
let db: Superduper;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

beforeAll(async () => {
  database = await createTestDatabase('hybrid');
  db = await connectTest(database);
  await q('CREATE TABLE docs (id int PRIMARY KEY, title text, lang text, body text)');
  for (const doc of DOCUMENTS) await q('INSERT INTO docs VALUES ($1, $2, $3, $4)', [doc.id, doc.title, doc.id % 2 ? 'en' : 'fr', documentText(doc)]);
  await db.apply(
    chunkerModel({ name: 'paragraphs', method: 'recursive', size: 120 }),
    listener({ name: 'doc_chunks', model: 'paragraphs', table: 'docs', keys: ['body'] }),
    listener({ name: 'chunk_vectors', schema: 'superduper', table: 'out_doc_chunks', keys: ['output'] }),
    vectorIndex({ name: 'chunk_index', listener: 'chunk_vectors', fullText: 'english' }),
  );
  await db.start({ reconcileMs: 100 });
  await db.waitFor('chunk_vectors', { timeoutMs: 60_000 });
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

type Search = (question: string) => Promise<string[][]>;
const byVector: Search = (question) => q(`SELECT key FROM superduper.like('chunk_index', $1, 5)`, [question]).then((rows) => rows.map((r) => r.key));
const byText: Search = (question) =>
  q(`SELECT key FROM superduper.hybrid('chunk_index', $1, 5, p_vector_weight => 0) WHERE text_rank IS NOT NULL`, [question]).then((rows) => rows.map((r) => r.key));
const byHybrid: Search = (question) => q(`SELECT key FROM superduper.hybrid('chunk_index', $1, 5)`, [question]).then((rows) => rows.map((r) => r.key));

async function hitAt5(search: Search): Promise<number> {
  let hits = 0;
  for (const item of QUESTIONS) {
    const keys = await search(item.question);
    if (keys.some(([doc, position]) => Number(doc) === item.doc && Number(position) === item.paragraph)) hits++;
  }
  return hits / QUESTIONS.length;
}

describe('hybrid search', () => {
  it('finds the chunk that answers a question at least as often as either search alone', async () => {
    const chunks = await q('SELECT count(*)::int AS n FROM superduper.out_doc_chunks');
    expect(chunks[0].n).toBe(DOCUMENTS.reduce((n, d) => n + d.paragraphs.length, 0));
    const vector = await hitAt5(byVector);
    const text = await hitAt5(byText);
    const hybrid = await hitAt5(byHybrid);
    console.log(`chunk hit@5 over ${QUESTIONS.length} questions: vector ${vector}, full-text ${text}, hybrid ${hybrid}`);
    expect(hybrid).toBeGreaterThanOrEqual(Math.max(vector, text));
    expect(hybrid).toBeGreaterThanOrEqual(0.8);
  });

  it('says where each hit came from, and fuses ranks by the weights given', async () => {
    const rows = await q(`SELECT key, score, vector_rank, text_rank FROM superduper.hybrid('chunk_index', 'PgBouncer client connections', 10)`);
    expect(rows).toHaveLength(10);
    expect(rows[0]).toMatchObject({ key: ['2', '4'], vector_rank: expect.any(Number), text_rank: 1 });
    for (const row of rows) {
      const expected = (row.vector_rank ? 1 / (60 + row.vector_rank) : 0) + (row.text_rank ? 1 / (60 + row.text_rank) : 0);
      expect(row.score).toBeCloseTo(expected, 12);
    }
    const scores = rows.map((r) => r.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    // Text only: the ranks of full-text search alone.
    const text = await q(`SELECT key, vector_rank FROM superduper.hybrid('chunk_index', 'PgBouncer client connections', 3, p_vector_weight => 0, p_text_weight => 2)`);
    expect(text[0].key).toEqual(['2', '4']);
  });

  it('applies the same filter to both halves and still returns k rows when k rows match', async () => {
    // The index's source is the chunks table: filter on its columns.
    const rows = await q(`SELECT key FROM superduper.hybrid('chunk_index', 'backups and restores', 6, '{"id": 2}')`);
    expect(rows).toHaveLength(6);
    expect(rows.every((r) => r.key[0] === '2')).toBe(true);
    const none = await q(`SELECT key FROM superduper.hybrid('chunk_index', 'backups', 5, '{"id": 99}')`);
    expect(none).toEqual([]);
  });

  it('answers a query of stop words only from the vector half', async () => {
    const rows = await q(`SELECT key, text_rank FROM superduper.hybrid('chunk_index', 'the of and', 3)`);
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.text_rank === null)).toBe(true);
  });

  it('refuses bad arguments, naming the index and what is expected', async () => {
    await expect(q(`SELECT * FROM superduper.hybrid('no_such', 'x', 5)`)).rejects.toThrow(/unknown vector index 'no_such'/);
    await expect(q(`SELECT * FROM superduper.hybrid('chunk_index', NULL, 5)`)).rejects.toThrow(/index "chunk_index": the query is NULL/);
    await expect(q(`SELECT * FROM superduper.hybrid('chunk_index', 'x', 0)`)).rejects.toThrow(/k must be between 1 and 1000, not 0/);
    await expect(q(`SELECT * FROM superduper.hybrid('chunk_index', 'x', 5, p_vector_weight => 0, p_text_weight => 0)`)).rejects.toThrow(/weights must be at least 0 and not both 0/);
    await expect(q(`SELECT * FROM superduper.hybrid('chunk_index', 'x', 50, p_candidates => 10)`)).rejects.toThrow(/candidates must be from k \(50\) to 1000, not 10/);
    await expect(q(`SELECT * FROM superduper.hybrid('chunk_index', 'x', 5, '{"nope": 1}')`)).rejects.toThrow(/filter names column nope/);
  });

  it('needs full-text search declared on the index, and says how', async () => {
    await db.apply(vectorIndex({ name: 'plain_index', listener: 'chunk_vectors' }));
    await expect(q(`SELECT * FROM superduper.hybrid('plain_index', 'x', 5)`)).rejects.toThrow(/vector index "plain_index" has no full-text search/);
    await expect(db.apply(vectorIndex({ name: 'bad_fts', listener: 'chunk_vectors', fullText: 'klingon' }))).rejects.toThrow(
      /"full_text" must name a text search configuration, not "klingon"/,
    );
    // Declared later, in place: the graph stays, hybrid works.
    await db.apply(vectorIndex({ name: 'plain_index', listener: 'chunk_vectors', fullText: 'simple' }));
    expect(await q(`SELECT count(*)::int AS n FROM superduper.hybrid('plain_index', 'PgBouncer', 5)`)).toEqual([{ n: 5 }]);
    // Its words sit beside the vectors, in a column of their own with a GIN index.
    const words = `SELECT a.attname FROM pg_attribute a WHERE a.attrelid = 'superduper.out_chunk_vectors'::regclass AND a.attname LIKE '\\_words\\_vi%' AND NOT a.attisdropped ORDER BY 1`;
    expect(await q(words)).toHaveLength(2);
    expect(await q(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE '\\_vi%\\_fts\\_l%'`)).toEqual([{ n: 2 }]);
    // Removed: its words and their GIN index go too; the other index's stay.
    await db.remove('plain_index');
    expect(await q(words)).toHaveLength(1);
    expect(await q(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE '\\_vi%\\_fts\\_l%'`)).toEqual([{ n: 1 }]);
    expect(await q(`SELECT count(*)::int AS n FROM superduper.hybrid('chunk_index', 'PgBouncer', 5)`)).toEqual([{ n: 5 }]);
  });

  it('keeps its words across a new version of the indexed listener', async () => {
    // Another embedding model: a breaking change, so a new outputs table is filled beside the current one.
    const [{ dim }] = await q(`SELECT (m.output ->> 'dim')::int AS dim FROM superduper.listeners l JOIN superduper.models m ON m.name = l.model WHERE l.name = 'chunk_vectors'`);
    const letters = (text: string) => Array.from({ length: dim }, (_, i) => (text.charCodeAt(i % text.length) % 7) + 1);
    const applied = await db.apply(
      functionModel({ name: 'letters', output: { type: 'vector', dim }, predict: (inputs: string[]) => inputs.map(letters) }),
      listener({ name: 'chunk_vectors', model: 'letters', schema: 'superduper', table: 'out_doc_chunks', keys: ['output'] }),
    );
    expect(applied.map((a) => a.action)).toContain('rebuilding');
    await db.waitFor('chunk_vectors', { timeoutMs: 60_000 });
    await eventually(async () => (await q(`SELECT count(*)::int AS n FROM superduper.listeners WHERE name = 'chunk_vectors'`))[0].n === 1, 30_000, 'the old version to go');
    const rows = await q(`SELECT key, text_rank FROM superduper.hybrid('chunk_index', 'PgBouncer client connections', 5)`);
    expect(rows[0]).toMatchObject({ key: ['2', '4'], text_rank: 1 });
    // The old version's trigger function went with it: one left, the new version's.
    const [{ id }] = await q(`SELECT id FROM superduper._listeners WHERE name = 'chunk_vectors'`);
    const functions = await q(`SELECT proname FROM pg_proc WHERE pronamespace = 'superduper'::regnamespace AND proname LIKE '\\_vi%\\_words\\_l%'`);
    expect(functions.map((f) => f.proname)).toEqual([expect.stringMatching(new RegExp(`^_vi\\d+_words_l${id}$`))]);
  });
});
