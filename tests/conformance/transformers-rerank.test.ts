/**
 * A cross-encoder reranker run by the transformers runtime (task "rerank"),
 * called from SQL through superduper.predict as every reranker is: each input
 * {"query", "documents"}, each output an array of scores in document order.
 * The model is generated (tests/fixtures/tiny-hf-model.ts): its logit is the
 * number of words query and document share, so every score is known.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { transformersModel } from '../../src/components/transformers-model.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import type { ModelRecord } from '../../src/models/types.js';
import { TINY_VOCABULARY, writeTinyCrossEncoder } from '../fixtures/tiny-hf-model.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

let work: string;
let database: TestDatabase;
let db: Superduper;

const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);
const predict = async (model: string, input: unknown) =>
  ((await q(`SELECT superduper.predict($1, $2::jsonb) AS scores`, [model, JSON.stringify(input)])) as Array<{ scores: number[] }>)[0]!.scores;
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** What the tiny cross-encoder computes: for each word of the query, how often the document has it. */
function sharedWords(query: string, document: string): number {
  const words = (text: string) => text.toLowerCase().split(/\s+/).filter((w) => TINY_VOCABULARY.includes(w));
  const inDocument = words(document);
  return words(query).reduce((sum, word) => sum + inDocument.filter((w) => w === word).length, 0);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'superduper-rerank-test-'));
  process.env.SUPERDUPER_CACHE_DIR = join(work, 'cache');
  delete process.env.SUPERDUPER_ALLOW_REMOTE_MODELS;
  const oneLabel = await writeTinyCrossEncoder(join(work, 'one label'));
  const twoLabels = await writeTinyCrossEncoder(join(work, 'two labels'), { labels: 2 });
  database = await createTestDatabase('transformers_rerank');
  db = await connectTest(database);
  const reranker = transformersModel({ name: 'tiny_reranker', path: oneLabel.folder, task: 'rerank' });
  // No output given: a reranker's is jsonb.
  expect(reranker.spec.output).toEqual({ type: 'jsonb' });
  await db.apply(reranker, transformersModel({ name: 'tiny_relevance', path: twoLabels.folder, task: 'rerank' }));
  await db.start({ reconcileMs: 200 });
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

const query = 'a red car';
const documents = ['the blue house', 'a red car and a red house', 'the red dog', ''];

describe('a cross-encoder reranker from SQL', () => {
  it('scores each document, in order, higher for the documents sharing the query\'s words (one label: the logit)', async () => {
    const scores = await predict('tiny_reranker', { query, documents });
    expect(scores).toHaveLength(documents.length);
    // a, red, car: the second document has a twice, red twice and car once.
    [0, 5, 1, 0].forEach((expected, i) => expect(scores[i]).toBeCloseTo(expected, 5));
    expect(scores[1]).toBeGreaterThan(scores[2]!);
    expect(scores[2]).toBeGreaterThan(scores[0]!);
  });

  it('gives the probability of the last label when the model has two', async () => {
    const scores = await predict('tiny_relevance', { query, documents });
    [0, 5, 1, 0].forEach((shared, i) => expect(scores[i]).toBeCloseTo(sigmoid(shared), 5));
  });

  it('scores no documents as an empty array', async () => {
    expect(await predict('tiny_reranker', { query, documents: [] })).toEqual([]);
  });

  it('scores a batch of queries whose pairs span several forward passes, each in its own document order', async () => {
    const [record] = (await q(`SELECT name, runtime, output, config, artifact, spec_hash FROM superduper._models WHERE name = 'tiny_reranker'`)) as ModelRecord[];
    const model = await db.models.get(record!);
    const pool = ['red', 'car', 'cat', 'dog', 'the', 'house', 'blue', 'great', 'movie', 'a'];
    let seed = 7;
    const pick = () => pool[(seed = (seed * 48271) % 2147483647) % pool.length]!;
    const inputs = ['red car', 'the cat and the dog', 'a great movie'].map((q, i) => ({
      query: q,
      documents: Array.from({ length: 15 + 10 * i }, (_, j) => Array.from({ length: 1 + (j % 7) }, pick).join(' ')),
    }));
    const outputs = (await model.predict(inputs)) as number[][];
    expect(outputs.map((scores) => scores.length)).toEqual(inputs.map((input) => input.documents.length));
    inputs.forEach((input, i) => input.documents.forEach((document, j) => expect(outputs[i]![j]).toBeCloseTo(sharedWords(input.query, document), 5)));
    // The scores vary: a real check of the order, not a constant.
    expect(new Set(outputs.flat()).size).toBeGreaterThan(3);
  });
});

describe('a reranker given what it does not take', () => {
  it('fails with an error naming the model and the input it takes', async () => {
    for (const input of ['just a question', { query: 'a red car' }, { query: 'a red car', documents: 'the red dog' }, { question: 'x', documents: [] }, [query, documents]]) {
      await expect(predict('tiny_reranker', input)).rejects.toThrow(/reranker "tiny_reranker" takes \{"query": text, "documents": \[text, \.\.\.\]\}; got /);
    }
    await expect(predict('tiny_reranker', { query, documents: ['ok', 42] })).rejects.toThrow(/reranker "tiny_reranker" takes/);
  });

  it('refuses an output other than jsonb', async () => {
    await q(`SELECT superduper.apply($1::jsonb)`, [
      JSON.stringify({ type: 'model', name: 'vector_reranker', runtime: 'transformers', output: { type: 'vector', dim: 3 }, config: { task: 'rerank', model_id: 'cross-encoder/ms-marco-MiniLM-L-6-v2' } }),
    ]);
    const [record] = (await q(`SELECT name, runtime, output, config, artifact, spec_hash FROM superduper._models WHERE name = 'vector_reranker'`)) as ModelRecord[];
    await expect(db.models.get(record!)).rejects.toThrow(/transformers model "vector_reranker": a reranker's output is \{"type": "jsonb"\}/);
  });
});

describe('a cross-encoder as the final stage of a search', () => {
  it('superduper.rerank() orders the search candidates by its scores', async () => {
    const notes = ['the blue house', 'a red car and a red house', 'the red dog', 'a good day', 'the sad boring car'];
    await q('CREATE TABLE notes (id int PRIMARY KEY, body text)');
    for (const [i, body] of notes.entries()) await q('INSERT INTO notes VALUES ($1, $2)', [i + 1, body]);
    await db.apply(listener({ name: 'notes_vectors', table: 'notes', keys: ['body'] }), vectorIndex({ name: 'notes_index', listener: 'notes_vectors' }));
    await db.waitFor('notes_vectors', { timeoutMs: 60_000 });
    const rows = await q(`SELECT id, score, search_rank FROM superduper.rerank('notes_index', $1, 'tiny_reranker', 3, p_candidates => 5)`, [query]);
    const expected = notes
      .map((body, i) => ({ id: String(i + 1), score: sharedWords(query, body) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 3);
    expect(rows.map((r) => r.score)).toEqual(expected.map((e) => expect.closeTo(e.score, 4)));
    expect(rows[0].id).toBe('2');
    expect(rows.every((r) => r.search_rank >= 1 && r.search_rank <= 5)).toBe(true);
  });
});
