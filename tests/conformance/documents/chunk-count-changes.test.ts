/**
 * A document whose number of chunks shrinks and grows from edit to edit, under
 * a running chained embedding listener (slow enough that edits land while its
 * batches are in flight): afterwards the embeddings table holds exactly one row
 * per live chunk, computed from that chunk's text (none left at positions past
 * the new count), and vector, full-text and hybrid search return no chunk that
 * is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitRecursive } from '../../../src/chunking/recursive.js';
import type { Superduper } from '../../../src/client.js';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { features } from '../../helpers/models.js';

const SIZE = 120;
const DOCS = [1, 2, 3];

let database: TestDatabase;
let db: Superduper;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

/**
 * Doc `doc` at edit `edit` with `count` paragraphs, each one chunk (about 100
 * characters): every third paragraph's text changes with the edit, the others
 * stay, so an edit both keeps and changes chunks.
 */
function body(doc: number, edit: number, count: number): string | null {
  if (count < 0) return null;
  return Array.from({ length: count }, (_, i) => `Paragraph ${i} of doc ${doc}${i % 3 === 0 ? ` (edit ${edit})` : ''}: the quick brown fox jumps over the lazy dog.`).join('\n\n');
}

beforeAll(async () => {
  database = await createTestDatabase('chunk_counts');
  db = await connectTest(database);
  await q('CREATE TABLE docs (id int PRIMARY KEY, body text)');
  for (const doc of DOCS) await q('INSERT INTO docs VALUES ($1, $2)', [doc, body(doc, 0, 5 * doc)]);
  await db.apply(
    chunkerModel({ name: 'paragraphs', method: 'recursive', size: SIZE }),
    listener({ name: 'doc_chunks', model: 'paragraphs', table: 'docs', keys: ['body'], settings: { batch_size: 2 } }),
    // Slow, and in small batches: edits arrive while embeddings are computed.
    functionModel({
      name: 'slow_features',
      output: { type: 'vector', dim: 3 },
      version: '1',
      predict: async (inputs: string[]) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return inputs.map(features);
      },
    }),
    listener({ name: 'chunk_vectors', model: 'slow_features', schema: 'superduper', table: 'out_doc_chunks', keys: ['output'], settings: { batch_size: 4 } }),
    vectorIndex({ name: 'chunk_index', listener: 'chunk_vectors', measure: 'l2', fullText: 'simple' }),
  );
  await db.start({ reconcileMs: 100 });
  await db.waitFor('chunk_vectors', { timeoutMs: 30_000 });
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

const key = (id: unknown, position: unknown) => `${id}/${position}`;

/** Everything downstream of the documents agrees with their text now. */
async function expectCurrent(): Promise<number> {
  const docs = await q('SELECT id, body FROM docs ORDER BY id');
  const expected = docs.flatMap((d) => splitRecursive(d.body ?? '', { size: SIZE }).map((c, position) => ({ id: d.id, _position: position, output: c.text, _start: c.start, _end: c.end })));
  const chunks = await q('SELECT id, _position, output, _start, _end FROM superduper.out_doc_chunks ORDER BY id, _position');
  expect(chunks).toEqual(expected);

  // One embedding per live chunk, of that chunk's text; none elsewhere.
  const vectors = await q('SELECT v.id, v._position, v.output::text AS vector, c.output AS text FROM superduper.out_chunk_vectors v LEFT JOIN superduper.out_doc_chunks c USING (id, _position) ORDER BY 1, 2');
  expect(vectors.map((v) => key(v.id, v._position))).toEqual(chunks.map((c) => key(c.id, c._position)));
  for (const v of vectors) expect(JSON.parse(v.vector), `embedding of ${key(v.id, v._position)}`).toEqual(features(v.text));

  // Search: every chunk found, no gone one.
  const live = new Set(chunks.map((c) => key(c.id, c._position)));
  const found = (rows: Array<{ key: string[] }>) => rows.map((r) => key(r.key[0], r.key[1]));
  const vector = found(await q(`SELECT key FROM superduper.like('chunk_index', '[100, 30, 2]'::vector, 1000)`));
  expect(new Set(vector)).toEqual(live);
  expect(vector).toHaveLength(live.size);
  const text = found(await q(`SELECT key FROM superduper.hybrid('chunk_index', 'quick brown fox', 1000, p_vector_weight => 0) WHERE text_rank IS NOT NULL`));
  expect(new Set(text)).toEqual(live);
  // k = 1000 with the default candidates (4k would be past the limit of 1000).
  const hybrid = found(await q(`SELECT key FROM superduper.hybrid('chunk_index', 'paragraph fox', 1000)`));
  expect(new Set(hybrid)).toEqual(live);
  expect(hybrid).toHaveLength(live.size);
  return chunks.length;
}

describe('a chunk count that shrinks and grows under a chained embedding listener', () => {
  it('keeps one embedding per live chunk through edits waited for one by one', async () => {
    expect(await expectCurrent()).toBe(30);
    const counts = [12, 3, 15, 1, 0, 8, -1, 2, 20, 4];
    for (const [edit, count] of counts.entries()) {
      await q('UPDATE docs SET body = $2 WHERE id = $1', [1, body(1, edit + 1, count)]);
      await db.waitFor('chunk_vectors', { timeoutMs: 30_000 });
      expect(await expectCurrent()).toBe(Math.max(count, 0) + 10 + 15);
    }
  });

  it('ends current after a stream of edits that shrink and grow several documents while embeddings are in flight', async () => {
    const random = ((seed) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31))(13);
    for (let edit = 100; edit < 160; edit++) {
      const doc = DOCS[edit % DOCS.length]!;
      // Mostly a new count (0 to 24), sometimes NULL.
      const count = random() < 0.1 ? -1 : Math.floor(random() * 25);
      await q('UPDATE docs SET body = $2 WHERE id = $1', [doc, body(doc, edit, count)]);
      // Now and then, a pause long enough for a batch to be in flight.
      if (edit % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 60));
    }
    // And one document deleted and inserted again, shorter, mid-stream.
    await q('DELETE FROM docs WHERE id = 3');
    await q('INSERT INTO docs VALUES (3, $1)', [body(3, 999, 2)]);
    await db.waitFor('chunk_vectors', { timeoutMs: 45_000 });
    await expectCurrent();
    expect(await q('SELECT * FROM superduper.failures')).toEqual([]);
  });
});
