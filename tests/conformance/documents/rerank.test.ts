/**
 * superduper.rerank(): the final stage of a search, a reranker scoring the top
 * candidates of hybrid() or like() against the query and returning the best k;
 * superduper.rerank_scores() for passages of one's own; rag() with a reranker.
 * The reranker is Cohere's API on a local server speaking its wire format
 * (relevance: the share of the query's words a passage holds, rerankScore), or
 * a function model under the same contract.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { cohereRerank } from '../../../src/components/api-model.js';
import { listener } from '../../../src/components/listener.js';
import { chunkerModel } from '../../../src/components/model.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { rerankScore, startApiServer, type ApiServer } from '../../helpers/api-servers.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { DOCUMENTS, QUESTIONS, documentText } from '../../fixtures/retrieval-set.js';

let database: TestDatabase;
let db: Superduper;
let server: ApiServer;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

/** Each chunk's text, by its key (document id, position). */
const chunkText = new Map<string, string>();

beforeAll(async () => {
  process.env.RERANK_TEST_KEY = 'rerank-key';
  server = await startApiServer({ key: 'rerank-key' });
  database = await createTestDatabase('rerank');
  db = await connectTest(database);
  await q('CREATE TABLE docs (id int PRIMARY KEY, title text, body text)');
  for (const doc of DOCUMENTS) await q('INSERT INTO docs VALUES ($1, $2, $3)', [doc.id, doc.title, documentText(doc)]);
  await db.apply(
    chunkerModel({ name: 'paragraphs', method: 'recursive', size: 120 }),
    listener({ name: 'doc_chunks', model: 'paragraphs', table: 'docs', keys: ['body'] }),
    listener({ name: 'chunk_vectors', schema: 'superduper', table: 'out_doc_chunks', keys: ['output'] }),
    vectorIndex({ name: 'chunk_index', listener: 'chunk_vectors', fullText: 'english' }),
    vectorIndex({ name: 'vector_only', listener: 'chunk_vectors' }),
    cohereRerank({ name: 'reranker', model: 'rerank-v3.5', baseUrl: server.url, apiKeyEnv: 'RERANK_TEST_KEY' }),
    functionModel({
      name: 'longest_first',
      output: { type: 'jsonb' },
      predict: (inputs: Array<{ documents: string[] }>) => inputs.map(({ documents }) => documents.map((d) => d.length)),
    }),
    functionModel({ name: 'short_answer', output: { type: 'jsonb' }, predict: (inputs: unknown[]) => inputs.map(() => [1]) }),
    functionModel({ name: 'summary', output: { type: 'text' }, predict: (inputs: unknown[]) => inputs.map(() => 'x') }),
  );
  await db.start({ reconcileMs: 100 });
  await db.waitFor('chunk_vectors', { timeoutMs: 60_000 });
  for (const row of await q('SELECT id, _position, output FROM superduper.out_doc_chunks')) chunkText.set(`${row.id},${row._position}`, row.output);
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
  await server?.close();
});

beforeEach(() => {
  server.requests.length = 0;
});

const textOf = (key: string[]) => chunkText.get(key.join(','))!;

describe('reranking', () => {
  it('returns the k best of the search candidates by the reranker, with the rank each had in the search', async () => {
    const question = 'How long are backups kept in the object store?';
    const rows = await q(`SELECT id, key, score, search_rank FROM superduper.rerank('chunk_index', $1, 'reranker', 5)`, [question]);
    expect(rows).toHaveLength(5);
    // One call to the API, with the 20 candidates of hybrid() (4 × k, at least 20) in their search order.
    expect(server.requests.map((r) => r.path)).toEqual(['/v2/rerank']);
    const sent = server.requests[0]!.body;
    const candidates = await q(`SELECT key FROM superduper.hybrid('chunk_index', $1, 20)`, [question]);
    expect(sent).toMatchObject({ model: 'rerank-v3.5', query: question, top_n: 20 });
    expect(sent.documents).toEqual(candidates.map((c) => textOf(c.key)));
    // Scores are the reranker's, placed by index, best first; search_rank points back into the candidates.
    for (const row of rows) {
      expect(row.score).toBeCloseTo(rerankScore(question, textOf(row.key)), 12);
      expect(candidates[row.search_rank - 1].key).toEqual(row.key);
      expect(row.id).toBeNull(); // a two-column key: id is for one-column keys
    }
    const scores = rows.map((r) => r.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expect(rows[0].key).toEqual(['2', '0']);
  });

  it('only reorders the search\'s candidates (measured on the retrieval set with the stand-in reranker)', async () => {
    // The test server's reranker counts shared words: a stand-in for the wire
    // format, not a model, so its hit rates say nothing of a real reranker's.
    let searchFirst = 0;
    let rerankedFirst = 0;
    let rerankedAt5 = 0;
    for (const item of QUESTIONS) {
      const isAnswer = (key: string[]) => Number(key[0]) === item.doc && Number(key[1]) === item.paragraph;
      const candidates = (await q(`SELECT key FROM superduper.hybrid('chunk_index', $1, 20)`, [item.question])).map((r) => r.key.join(','));
      const reranked = await q(`SELECT key, search_rank FROM superduper.rerank('chunk_index', $1, 'reranker', 5)`, [item.question]);
      for (const row of reranked) expect(candidates[row.search_rank - 1]).toBe(row.key.join(','));
      if (isAnswer(candidates[0]!.split(','))) searchFirst++;
      if (isAnswer(reranked[0].key)) rerankedFirst++;
      if (reranked.some((r) => isAnswer(r.key))) rerankedAt5++;
    }
    const n = QUESTIONS.length;
    console.log(`chunk hit@1 over ${n} questions: hybrid ${searchFirst / n}, hybrid + stand-in rerank ${rerankedFirst / n}; reranked hit@5 ${rerankedAt5 / n}`);
    expect(rerankedAt5 / n).toBeGreaterThanOrEqual(0.9);
  });

  it('reranks like() when the index has no full-text search, or when told, and applies the filter', async () => {
    const vector = await q(`SELECT key FROM superduper.rerank('vector_only', 'badge replacement fee', 'longest_first', 3, p_candidates => 8)`);
    const candidates = await q(`SELECT key FROM superduper.like('vector_only', 'badge replacement fee', 8)`);
    const longest = candidates.map((c) => c.key).sort((a, b) => textOf(b).length - textOf(a).length || 0).slice(0, 3);
    expect(vector.map((r) => textOf(r.key).length)).toEqual(longest.map((k) => textOf(k).length));
    // A k above 250 with no candidates given: the default is capped at 1000, not refused.
    expect(await q(`SELECT count(*)::int AS n FROM superduper.rerank('vector_only', 'badge', 'longest_first', 300)`)).toEqual([{ n: chunkText.size }]);
    const told = await q(`SELECT search_rank FROM superduper.rerank('chunk_index', 'badge', 'longest_first', 3, p_candidates => 8, p_search => 'like')`);
    expect(told).toHaveLength(3);
    const filtered = await q(`SELECT key FROM superduper.rerank('chunk_index', 'backups and restores', 'reranker', 4, '{"id": 2}')`);
    expect(filtered).toHaveLength(4);
    expect(filtered.every((r) => r.key[0] === '2')).toBe(true);
  });

  it('scores passages of one\'s own in their order', async () => {
    const [row] = await q(`SELECT superduper.rerank_scores('reranker', 'night backups', ARRAY['backups run every night', 'coffee', 'night shift']) AS s`);
    expect(row.s).toEqual([1, 0, 0.5]);
    expect(await q(`SELECT superduper.rerank_scores('reranker', 'x', ARRAY[]::text[]) AS s`)).toEqual([{ s: [] }]);
    expect(server.requests).toHaveLength(1);
  });

  it('gives rag() the reranked passages when asked', async () => {
    const question = 'When do backups run?';
    const [row] = await q(`SELECT sources FROM superduper.rag_context('chunk_index', $1, 3, p_rerank => 'reranker')`, [question]);
    const reranked = await q(`SELECT key FROM superduper.rerank('chunk_index', $1, 'reranker', 3)`, [question]);
    expect(row.sources.map((s: { key: string[] }) => s.key)).toEqual(reranked.map((r) => r.key));
  });

  it('refuses what is not a reranker and bad arguments, naming the object at fault', async () => {
    await expect(q(`SELECT * FROM superduper.rerank('chunk_index', 'x', 'nope', 5)`)).rejects.toThrow(/superduper.rerank: unknown model 'nope'/);
    await expect(q(`SELECT * FROM superduper.rerank('chunk_index', 'x', 'summary', 5)`)).rejects.toThrow(/model "summary" outputs text, not scores/);
    await expect(q(`SELECT * FROM superduper.rerank('chunk_index', 'backups', 'short_answer', 5)`)).rejects.toThrow(
      /reranker "short_answer" answered \[1\], not 20 scores/,
    );
    await expect(q(`SELECT * FROM superduper.rerank('no_index', 'x', 'reranker', 5)`)).rejects.toThrow(/unknown vector index 'no_index'/);
    await expect(q(`SELECT * FROM superduper.rerank('chunk_index', 'x', 'reranker', 10, p_candidates => 5)`)).rejects.toThrow(
      /index "chunk_index": candidates must be from k \(10\) to 1000, not 5/,
    );
    await expect(q(`SELECT * FROM superduper.rerank('chunk_index', 'x', 'reranker', 5, p_search => 'fuzzy')`)).rejects.toThrow(/search must be 'like' or 'hybrid', not 'fuzzy'/);
    await expect(q(`SELECT superduper.rerank_scores('reranker', NULL, ARRAY['a'])`)).rejects.toThrow(/reranker "reranker": the query is NULL/);
    await expect(q(`SELECT superduper.predict('reranker', '"just text"')`)).rejects.toThrow(/reranker "reranker" takes \{"query": text, "documents": \[text, \.\.\.\]\}; got a string/);
    expect(server.requests.filter((r) => r.path === '/v2/rerank')).toHaveLength(0);
  });
});
