/**
 * superduper.rag() from SQL: the question's passages found by hybrid search
 * over the chunks of a few documents, put into a prompt within a context
 * budget, answered by an LLM over the OpenAI wire format (a local server whose
 * replies come from the stand-in answerer: it quotes the passage sharing most
 * words with the question and cites it), with the keys of the passages and
 * which ones the answer cites; answers cached per model version and prompt.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { openaiChat } from '../../../src/components/api-model.js';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { standInAnswer } from '../../../src/demo/stand-in-llm.js';
import { startApiServer, type ApiServer } from '../../helpers/api-servers.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { DOCUMENTS, QUESTIONS, documentText } from '../../fixtures/retrieval-set.js';

let database: TestDatabase;
let db: Superduper;
let server: ApiServer;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

beforeAll(async () => {
  process.env.RAG_TEST_KEY = 'rag-key';
  server = await startApiServer({ key: 'rag-key' });
  server.reply = (message) => standInAnswer(message);
  database = await createTestDatabase('rag');
  db = await connectTest(database);
  await q('CREATE TABLE docs (id int PRIMARY KEY, title text, body text)');
  for (const doc of DOCUMENTS) await q('INSERT INTO docs VALUES ($1, $2, $3)', [doc.id, doc.title, documentText(doc)]);
  await db.apply(
    chunkerModel({ name: 'paragraphs', method: 'recursive', size: 120 }),
    listener({ name: 'doc_chunks', model: 'paragraphs', table: 'docs', keys: ['body'] }),
    listener({ name: 'chunk_vectors', schema: 'superduper', table: 'out_doc_chunks', keys: ['output'] }),
    vectorIndex({ name: 'chunk_index', listener: 'chunk_vectors', fullText: 'english' }),
    openaiChat({ name: 'llm', model: 'stand-in', baseUrl: `${server.url}/v1`, apiKeyEnv: 'RAG_TEST_KEY' }),
  );
  await db.start({ reconcileMs: 100 });
  await db.waitFor('chunk_vectors', { timeoutMs: 60_000 });
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
  await server?.close();
});

beforeEach(async () => {
  await q('DELETE FROM superduper._answer_cache');
  server.requests.length = 0;
});

describe('RAG from SQL', () => {
  it('gives the LLM the passage that holds the answer, and marks the passages the answer cites', async () => {
    let given = 0;
    for (const item of QUESTIONS) {
      const [row] = await q(`SELECT answer, sources, cached FROM superduper.rag('chunk_index', $1, 'llm')`, [item.question]);
      expect(row.cached).toBe(false);
      expect(row.sources.map((s: { n: number }) => s.n)).toEqual([1, 2, 3, 4, 5]);
      if (row.sources.some((s: { key: string[] }) => s.key[0] === String(item.doc) && s.key[1] === String(item.paragraph))) given++;
      // The stand-in quotes one passage and cites it: exactly that one is
      // marked (none when it shares no word with the question).
      const cited = row.sources.filter((s: { cited: boolean }) => s.cited);
      if (row.answer.startsWith('I do not know')) {
        expect(cited).toEqual([]);
        continue;
      }
      expect(cited).toHaveLength(1);
      const [, doc, position] = [null, ...cited[0].key];
      const quoted = DOCUMENTS.find((d) => String(d.id) === doc)!.paragraphs[Number(position)];
      expect(row.answer).toBe(`${quoted} [${cited[0].n}]`);
    }
    console.log(`RAG over ${QUESTIONS.length} questions: the passage holding the answer was in the prompt for ${given}`);
    expect(given).toBeGreaterThanOrEqual(QUESTIONS.length * 0.9);
  });

  it('sends the prompt the template declares, with the numbered passages, and caches the answer per model version', async () => {
    const prompt = 'Context:\n{context}\n---\nQ: {question}\nAnswer:';
    const ask = () => q(`SELECT answer, sources, cached FROM superduper.rag('chunk_index', 'How long are backups kept?', 'llm', 3, $1)`, [prompt]);
    const [first] = await ask();
    expect(server.requests).toHaveLength(1);
    const sent = server.requests[0]!.body.messages.at(-1).content as string;
    const [context] = await q(`SELECT prompt, sources FROM superduper.rag_context('chunk_index', 'How long are backups kept?', 3, $1)`, [prompt]);
    expect(sent).toBe(context.prompt);
    expect(sent).toMatch(/^Context:\n\[1\] .+\n\n\[2\] .+\n\n\[3\] .+\n---\nQ: How long are backups kept\?\nAnswer:$/);
    expect(first.sources.map((s: { key: string[] }) => s.key)).toEqual(context.sources.map((s: { key: string[] }) => s.key));

    const [again] = await ask();
    expect(again).toMatchObject({ answer: first.answer, cached: true });
    expect(server.requests).toHaveLength(1);

    // Another version of the model: asked again.
    await db.apply(openaiChat({ name: 'llm', model: 'stand-in', baseUrl: `${server.url}/v1`, apiKeyEnv: 'RAG_TEST_KEY', temperature: 0 }));
    const [third] = await ask();
    expect(third.cached).toBe(false);
    expect(server.requests).toHaveLength(2);
  });

  it('keeps the context within the budget, cutting the first passage if it alone is too long', async () => {
    const [small] = await q(`SELECT prompt, sources FROM superduper.rag_context('chunk_index', 'PgBouncer connections', 5, NULL, NULL, 30)`);
    const tokens = small.sources.map((s: { tokens: number }) => s.tokens);
    expect(tokens.reduce((a: number, b: number) => a + b, 0)).toBeLessThanOrEqual(30);
    expect(small.sources.length).toBeLessThan(5);
    const [tiny] = await q(`SELECT prompt, sources FROM superduper.rag_context('chunk_index', 'PgBouncer connections', 5, NULL, NULL, 5)`);
    expect(tiny.sources).toHaveLength(1);
    expect(tiny.prompt).toMatch(/\[1\] .{20}\n/);
  });

  it('passes the filter to the search', async () => {
    const [row] = await q(`SELECT sources FROM superduper.rag('chunk_index', 'How long are backups kept?', 'llm', 4, NULL, '{"id": 3}')`);
    expect(row.sources.every((s: { key: string[] }) => s.key[0] === '3')).toBe(true);
  });

  it('refuses bad arguments, naming the object at fault', async () => {
    await expect(q(`SELECT * FROM superduper.rag('chunk_index', 'x', 'nope')`)).rejects.toThrow(/superduper.rag: unknown model 'nope'/);
    await expect(q(`SELECT * FROM superduper.rag('chunk_index', 'x', 'paragraphs')`)).rejects.toThrow(/model "paragraphs" outputs text, not text|model "paragraphs" outputs/);
    await expect(q(`SELECT * FROM superduper.rag('nope', 'x', 'llm')`)).rejects.toThrow(/unknown vector index 'nope'/);
    await expect(q(`SELECT * FROM superduper.rag('chunk_index', '', 'llm')`)).rejects.toThrow(/index "chunk_index": the question is empty/);
    await expect(q(`SELECT * FROM superduper.rag('chunk_index', 'x', 'llm', 5, 'no placeholders')`)).rejects.toThrow(/the prompt must hold \{context\} and \{question\}/);
    await expect(q(`SELECT * FROM superduper.rag('chunk_index', 'x', 'llm', 5, NULL, NULL, 0)`)).rejects.toThrow(/context budget must be a positive number of tokens, not 0/);
    expect(server.requests).toHaveLength(0);
  });
});
