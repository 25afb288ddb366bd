/**
 * One row to many outputs: a chunker listener writes one output row per chunk
 * (keyed by the document's key and the chunk's position, with its span and
 * heading path), a listener chained on those rows embeds each chunk, and a
 * vector index searches them. Edits re-embed only the chunks whose text
 * changed; deletes and truncates remove every chunk.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { countingFeatureModel } from '../../helpers/models.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../../helpers/database.js';

let database: TestDatabase;
let db: Superduper;

beforeEach(async () => {
  database = await createTestDatabase('chunk_outputs');
  db = await connectTest(database);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

/** A document of `count` paragraphs, each about 100 characters and one chunk of size 120. */
function paragraphs(count: number, tag = ''): string[] {
  return Array.from({ length: count }, (_, i) => `Paragraph ${i}${tag}: ${'the quick brown fox jumps over the lazy dog '.repeat(2).trim()}.`);
}

interface ChunkRow {
  id: number;
  _position: number;
  output: string;
  _start: number;
  _end: number;
  _headings: string[] | null;
}

async function chunks(table = 'superduper.out_doc_chunks'): Promise<ChunkRow[]> {
  const { rows } = await database.sql.query(`SELECT id, _position, output, _start, _end, _headings FROM ${table} ORDER BY id, _position`);
  return rows as ChunkRow[];
}

describe('one row to many outputs', () => {
  it('writes one row per chunk with its span, chains embeddings on them, and re-embeds only what an edit changed', async () => {
    await database.sql.query('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    const body = paragraphs(20).join('\n\n');
    await database.sql.query('INSERT INTO docs VALUES (1, $1), (2, $2)', [body, 'A one-line document.']);
    const embedder = countingFeatureModel('chunk_features');
    await db.apply(
      chunkerModel({ name: 'paragraph_chunks', method: 'recursive', size: 120 }),
      listener({ name: 'doc_chunks', model: 'paragraph_chunks', table: 'docs', keys: ['body'] }),
      embedder,
      listener({ name: 'chunk_vectors', model: 'chunk_features', schema: 'superduper', table: 'out_doc_chunks', keys: ['output'] }),
      vectorIndex({ name: 'chunk_index', listener: 'chunk_vectors', measure: 'l2' }),
    );
    await db.start({ reconcileMs: 100 });
    await db.waitFor('chunk_vectors', { timeoutMs: 30_000 });

    const first = await chunks();
    expect(first.filter((c) => c.id === 1)).toHaveLength(20);
    for (const chunk of first.filter((c) => c.id === 1)) expect(body.slice(chunk._start, chunk._end)).toBe(chunk.output);
    expect(first.find((c) => c.id === 2)).toMatchObject({ _position: 0, output: 'A one-line document.', _start: 0, _end: 20 });
    expect(embedder.calls.size).toBe(21);
    const { rows: vectors } = await database.sql.query('SELECT count(*)::int AS n FROM superduper.out_chunk_vectors');
    expect(vectors[0].n).toBe(21);

    // Search returns a chunk's document key and position.
    const { rows: hits } = await database.sql.query(`SELECT key FROM superduper.like('chunk_index', $1::vector, 1)`, [
      JSON.stringify([first[5]!.output.length, (first[5]!.output.match(/[aeiou]/gi) ?? []).length, 1]),
    ]);
    expect(hits[0].key[0]).toBe('1');

    // One paragraph edited: one chunk's text changes, one embedding is computed.
    const edited = paragraphs(20);
    edited[7] = 'Paragraph 7 now says something else entirely, about fast red foxes.';
    const callsBefore = [...embedder.calls.values()].reduce((a, b) => a + b, 0);
    await database.sql.query('UPDATE docs SET body = $1 WHERE id = 1', [edited.join('\n\n')]);
    await db.waitFor('chunk_vectors', { timeoutMs: 30_000 });
    const callsAfter = [...embedder.calls.values()].reduce((a, b) => a + b, 0);
    const after = (await chunks()).filter((c) => c.id === 1);
    expect(after[7]!.output).toBe(edited[7]);
    // Chunks after the edited one moved (their spans), but their text did not: not re-embedded.
    expect(callsAfter - callsBefore).toBe(1);

    // Shorter: the chunks past the new end go, with their embeddings.
    await database.sql.query('UPDATE docs SET body = $1 WHERE id = 1', [paragraphs(3).join('\n\n')]);
    await db.waitFor('chunk_vectors', { timeoutMs: 30_000 });
    expect((await chunks()).filter((c) => c.id === 1).map((c) => c._position)).toEqual([0, 1, 2]);
    const { rows: left } = await database.sql.query('SELECT count(*)::int AS n FROM superduper.out_chunk_vectors WHERE id = 1');
    expect(left[0].n).toBe(3);

    // Delete: every chunk of the document goes, and its embeddings.
    await database.sql.query('DELETE FROM docs WHERE id = 1');
    await db.waitFor('chunk_vectors', { timeoutMs: 30_000 });
    expect((await chunks()).map((c) => c.id)).toEqual([2]);
    const { rows: rest } = await database.sql.query('SELECT id FROM superduper.out_chunk_vectors');
    expect(rest.map((r) => r.id)).toEqual([2]);

    // Truncate: nothing left.
    await database.sql.query('TRUNCATE docs');
    await db.waitFor('chunk_vectors', { timeoutMs: 30_000 });
    expect(await chunks()).toEqual([]);
  });
});
