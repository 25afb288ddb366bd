import { demoHybridSql, demoRagSql } from '../backends/postgres/demo.js';
import type { Superduper } from '../client.js';
import { listener } from '../components/listener.js';
import { chunkerModel } from '../components/model.js';
import { vectorIndex } from '../components/vector-index.js';
import { showProgress, summaryLines } from '../cli/progress.js';
import { excerpt, quoteLiteral } from './text.js';
import { standInLlm } from './stand-in-llm.js';

export const DEMO_CHUNKS = 'docs_chunks';
export const DEMO_CHUNK_VECTORS = 'docs_chunk_vectors';
export const DEMO_CHUNK_INDEX = 'docs_chunk_index';
export const DEMO_LLM = 'stand-in-llm';
/** The documents the demo chunks (a few, so that the demo stays quick): the RAG guide's sections. */
export const DEMO_CHUNKED_FILES = "file = 'docs/rag.md'";
export const DEMO_QUESTION = 'how do I keep the prompt within the context budget?';

type Write = (text: string) => void;

/**
 * The documents-to-answers path on the demo's table: its RAG guide's sections
 * chunked (one output row per chunk, the heading in what gets embedded), the
 * chunks embedded and indexed with full-text search, a hybrid search, and a
 * question answered by superduper.rag() with a stand-in for an LLM.
 */
export async function runRagStep(db: Superduper, table: string, write: Write): Promise<{ chunks: number; answer: string; passages: string[][] }> {
  const applied = await db.apply(
    chunkerModel({ name: 'demo-chunker', method: 'recursive', size: 400, overlap: 40, format: '{heading}\n{text}' }),
    listener({ name: DEMO_CHUNKS, model: 'demo-chunker', table, keys: ['body', 'heading'], filter: DEMO_CHUNKED_FILES }),
    listener({ name: DEMO_CHUNK_VECTORS, schema: 'superduper', table: `out_${DEMO_CHUNKS}`, keys: ['output'] }),
    vectorIndex({ name: DEMO_CHUNK_INDEX, listener: DEMO_CHUNK_VECTORS, fullText: 'english' }),
    standInLlm(DEMO_LLM),
  );
  write(`\nChunks: listener ${DEMO_CHUNKS} splits the sections of docs/rag.md (${DEMO_CHUNKED_FILES}) into chunks, one output row each; ` +
    `${DEMO_CHUNK_VECTORS} embeds them; ${DEMO_CHUNK_INDEX} adds full-text search: ${applied.map((r) => r.action).join(', ')}\n`);
  const started = Date.now();
  const outcomes = await showProgress(db, [DEMO_CHUNKS, DEMO_CHUNK_VECTORS]);
  write(`${summaryLines(outcomes, (Date.now() - started) / 1000).join('\n')}\n`);
  const counted = await db.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM superduper.out_${DEMO_CHUNKS}`);

  const hybridSql = demoHybridSql(DEMO_CHUNK_INDEX, DEMO_CHUNKS);
  write(`\n${hybridSql.replace('$1', quoteLiteral(DEMO_QUESTION))};\n`);
  const hits = await db.db.query<{ id: string; chunk: string; score: string; vector_rank: number | null; text_rank: number | null; text: string }>(hybridSql, [DEMO_QUESTION]);
  for (const hit of hits.rows) write(`  ${hit.score}  doc ${hit.id} chunk ${hit.chunk} (vector #${hit.vector_rank ?? '-'}, words #${hit.text_rank ?? '-'})  ${excerpt(hit.text, 70)}\n`);

  const ragSql = demoRagSql(DEMO_CHUNK_INDEX, DEMO_LLM);
  write(`\n${ragSql.replace('$1', quoteLiteral(DEMO_QUESTION))};\n`);
  write(`  (${DEMO_LLM} is NOT a language model: a stand-in that quotes the passage sharing the most words with the question, and cites it.\n` +
    '   Apply an openai, anthropic or self-hosted model and name it instead; see docs/rag.md.)\n');
  const rag = await db.db.query<{ answer: string; passages: string[][] }>(ragSql, [DEMO_QUESTION]);
  const row = rag.rows[0]!;
  write(`  answer:   ${excerpt(row.answer, 110)}\n  passages: ${JSON.stringify(row.passages)}\n`);
  return { chunks: counted.rows[0]?.n ?? 0, answer: row.answer, passages: row.passages };
}
