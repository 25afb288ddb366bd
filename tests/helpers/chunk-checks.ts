import type pg from 'pg';
import { splitRecursive } from '../../src/chunking/recursive.js';
import { fakeEmbedding } from './api-servers.js';

/**
 * Documents for the fault tests of one row to many outputs, and the check that
 * their chunks and the chunks' embeddings are exactly what the chunker and the
 * embedding model give for each document's text now.
 */

const WORDS = 'backup restore replica primary standby vacuum index query planner buffer checkpoint lease queue sidecar chunk vector'.split(' ');

/** A document of several paragraphs of sentences of varied length, from a seed (the same seed, the same text). */
export function documentBody(seed: number, paragraphs = 4 + (seed % 6)): string {
  let state = seed * 2654435761 + 1;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  return Array.from({ length: paragraphs }, () =>
    Array.from({ length: 1 + next(5) }, () => {
      const words = Array.from({ length: 4 + next(14) }, () => WORDS[next(WORDS.length)]!);
      return `${words.join(' ')}.`;
    }).join(' '),
  ).join('\n\n');
}

export interface ChunkCheck {
  documents: number;
  chunks: number;
  /** Documents whose chunks differ from the chunker's for their text (missing, extra, wrong text or span). */
  wrongDocuments: number[];
  /** Chunks with no embedding, or one not of their text. */
  missingEmbeddings: number;
  wrongEmbeddings: number;
  /** Embeddings of no live chunk. */
  orphanEmbeddings: number;
}

/**
 * Compares superduper.out_<chunks> with splitRecursive over docs.body (keyed
 * by id) and superduper.out_<vectors> with the local API server's embedding
 * of each chunk's text.
 */
export async function checkChunks(
  sql: pg.Pool | pg.Client,
  options: { chunks: string; vectors: string; size: number; overlap: number; dim: number },
): Promise<ChunkCheck> {
  const docs = (await sql.query<{ id: number; body: string | null }>('SELECT id, body FROM docs ORDER BY id')).rows;
  const chunkRows = (
    await sql.query<{ id: number; _position: number; output: string; _start: number; _end: number; vector: string | null }>(
      `SELECT c.id, c._position, c.output, c._start, c._end, v.output::text AS vector
       FROM superduper.${options.chunks} c LEFT JOIN superduper.${options.vectors} v USING (id, _position) ORDER BY c.id, c._position`,
    )
  ).rows;
  const byDoc = new Map<number, typeof chunkRows>();
  for (const row of chunkRows) byDoc.set(row.id, [...(byDoc.get(row.id) ?? []), row]);
  const check: ChunkCheck = { documents: docs.length, chunks: chunkRows.length, wrongDocuments: [], missingEmbeddings: 0, wrongEmbeddings: 0, orphanEmbeddings: 0 };
  const live = new Set(docs.map((d) => d.id));
  for (const id of byDoc.keys()) if (!live.has(id)) check.wrongDocuments.push(id);
  for (const doc of docs) {
    const want = splitRecursive(doc.body ?? '', { size: options.size, overlap: options.overlap });
    const got = byDoc.get(doc.id) ?? [];
    const same = got.length === want.length && want.every((c, i) => got[i]!._position === i && got[i]!.output === c.text && got[i]!._start === c.start && got[i]!._end === c.end);
    if (!same) check.wrongDocuments.push(doc.id);
  }
  for (const row of chunkRows) {
    if (row.vector === null) check.missingEmbeddings++;
    else if (JSON.stringify(JSON.parse(row.vector)) !== JSON.stringify(fakeEmbedding(row.output, options.dim))) check.wrongEmbeddings++;
  }
  check.orphanEmbeddings = (
    await sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM superduper.${options.vectors} v
       WHERE NOT EXISTS (SELECT 1 FROM superduper.${options.chunks} c WHERE c.id = v.id AND c._position = v._position)`,
    )
  ).rows[0]!.n;
  return check;
}
