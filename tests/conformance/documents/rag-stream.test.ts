/**
 * db.rag() from TypeScript: the same prompt, sources and answer cache as
 * superduper.rag(), with the LLM run in the calling process and its answer
 * streamed (OpenAI chat completions and Anthropic messages with "stream": true,
 * from a local server speaking both formats, whose replies come from the
 * stand-in answerer). A failed or aborted answer caches nothing.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { anthropicMessages, cohereRerank, openaiChat } from '../../../src/components/api-model.js';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { standInAnswer, standInLlm } from '../../../src/demo/stand-in-llm.js';
import type { RagAnswer } from '../../../src/rag/types.js';
import { startApiServer, type ApiServer } from '../../helpers/api-servers.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { DOCUMENTS, documentText } from '../../fixtures/retrieval-set.js';

let database: TestDatabase;
let db: Superduper;
let server: ApiServer;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);
const QUESTION = 'How long are backups kept?';
const cachedAnswers = async () => Number((await q('SELECT count(*) AS n FROM superduper._answer_cache'))[0].n);

/** Reads an answer's pieces, with when each arrived. */
async function read(reply: AsyncIterable<string>): Promise<{ pieces: string[]; at: number[] }> {
  const pieces: string[] = [];
  const at: number[] = [];
  for await (const piece of reply) {
    pieces.push(piece);
    at.push(performance.now());
  }
  return { pieces, at };
}

beforeAll(async () => {
  process.env.RAG_STREAM_KEY = 'rag-key';
  server = await startApiServer({ key: 'rag-key' });
  server.reply = (message) => standInAnswer(message);
  database = await createTestDatabase('rag_stream');
  db = await connectTest(database);
  await q('CREATE TABLE docs (id int PRIMARY KEY, title text, body text)');
  for (const doc of DOCUMENTS) await q('INSERT INTO docs VALUES ($1, $2, $3)', [doc.id, doc.title, documentText(doc)]);
  const api = { model: 'stand-in', apiKeyEnv: 'RAG_STREAM_KEY' };
  await db.apply(
    chunkerModel({ name: 'paragraphs', method: 'recursive', size: 120 }),
    listener({ name: 'doc_chunks', model: 'paragraphs', table: 'docs', keys: ['body'] }),
    listener({ name: 'chunk_vectors', schema: 'superduper', table: 'out_doc_chunks', keys: ['output'] }),
    vectorIndex({ name: 'chunk_index', listener: 'chunk_vectors', fullText: 'english' }),
    openaiChat({ name: 'llm', baseUrl: `${server.url}/v1`, ...api }),
    // One retry with a short backoff, so that failing for good is quick.
    openaiChat({ name: 'llm_once', baseUrl: `${server.url}/v1`, maxRetries: 1, ...api }),
    anthropicMessages({ name: 'claude', baseUrl: server.url, maxRetries: 0, ...api }),
    cohereRerank({ name: 'reranker', model: 'rerank-test', baseUrl: server.url, apiKeyEnv: 'RAG_STREAM_KEY' }),
    standInLlm('stand_in'),
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
  Object.assign(server.stream, { delayMs: 0, cut: undefined, errorAfter: undefined, abandoned: 0, completed: 0 });
});

describe('db.rag() streams the answer', () => {
  it('in several pieces as the LLM writes them, joining to the answer superduper.rag() gives, and caches it for SQL', async () => {
    server.stream.delayMs = 20;
    const started = performance.now();
    const reply = await db.rag('chunk_index', QUESTION, { llm: 'llm' });
    expect(reply.cached).toBe(false);
    expect(reply.sources.map((s) => s.n)).toEqual([1, 2, 3, 4, 5]);
    const { pieces, at } = await read(reply);
    expect(pieces.length).toBeGreaterThan(3);
    // Streamed, not one piece at the end: the first piece came well before the last.
    expect(at.at(-1)! - at[0]!).toBeGreaterThan(20 * (pieces.length - 2));
    console.log(`db.rag(): ${pieces.length} pieces, first after ${Math.round(at[0]! - started)} ms, last after ${Math.round(at.at(-1)! - started)} ms`);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.body).toMatchObject({ stream: true, model: 'stand-in' });

    const { answer, sources, cached } = await reply.result;
    expect(answer).toBe(pieces.join(''));
    expect(await reply.answer).toBe(answer);
    expect(cached).toBe(false);
    expect(sources.filter((s) => s.cited).map((s) => s.n)).toEqual([...answer.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])));

    // SQL finds it cached, with the same sources and citations.
    const [fromSql] = await q(`SELECT answer, sources, cached FROM superduper.rag('chunk_index', $1, 'llm')`, [QUESTION]);
    expect(fromSql).toEqual({ answer, sources, cached: true });
    expect(server.requests).toHaveLength(1);

    // Asked afresh from SQL (the sidecar's predict(), not streamed): the same answer.
    await q('DELETE FROM superduper._answer_cache');
    const [again] = await q(`SELECT answer, cached FROM superduper.rag('chunk_index', $1, 'llm')`, [QUESTION]);
    expect(again).toEqual({ answer, cached: false });
    expect(server.requests.at(-1)!.body.stream).toBeUndefined();
  });

  it('gives a cached answer in one piece, whichever side cached it', async () => {
    const [fromSql] = await q(`SELECT answer FROM superduper.rag('chunk_index', $1, 'llm')`, [QUESTION]);
    const asked = server.requests.length;
    const reply = await db.rag('chunk_index', QUESTION, { llm: 'llm' });
    expect(reply.cached).toBe(true);
    expect((await read(reply)).pieces).toEqual([fromSql.answer]);
    expect(server.requests).toHaveLength(asked);

    const twice = await db.rag('chunk_index', QUESTION, { llm: 'llm' });
    expect(await twice.answer).toBe(fromSql.answer);
    expect((await twice.result).cached).toBe(true);
  });

  it('can be read by several readers and awaited without reading', async () => {
    server.stream.delayMs = 5;
    const reply = await db.rag('chunk_index', 'Where do visitors sign in?', { llm: 'llm' });
    const [a, b, whole] = await Promise.all([read(reply.tokens), read(reply), reply.answer]);
    expect(a.pieces).toEqual(b.pieces);
    expect(a.pieces.join('')).toBe(whole);
    // A reader that comes after the end still gets every piece.
    expect((await read(reply)).pieces).toEqual(a.pieces);
    expect(server.requests).toHaveLength(1);
  });

  it('passes k, the prompt, the filter, the context budget and a reranker to rag_context()', async () => {
    const prompt = 'Passages:\n{context}\n\nQuestion: {question}\nAnswer:';
    const reply = await db.rag('chunk_index', QUESTION, { llm: 'llm', k: 3, prompt, filter: { id: 2 }, contextTokens: 60 });
    const [context] = await q(
      `SELECT prompt, sources FROM superduper.rag_context('chunk_index', $1, 3, $2, '{"id": 2}', 60)`,
      [QUESTION, prompt],
    );
    expect(reply.prompt).toBe(context.prompt);
    expect(reply.sources).toEqual(context.sources);
    expect(reply.sources.every((s) => s.key[0] === '2')).toBe(true);
    await reply.answer;
    expect(server.requests[0]!.body.messages.at(-1).content).toBe(context.prompt);

    const reranked = await db.rag('chunk_index', QUESTION, { llm: 'llm', k: 3, rerank: 'reranker' });
    const [withRerank] = await q(`SELECT prompt, sources FROM superduper.rag_context('chunk_index', $1, 3, p_rerank => 'reranker')`, [QUESTION]);
    expect(reranked.prompt).toBe(withRerank.prompt);
    expect(server.requests.some((r) => r.path === '/v2/rerank')).toBe(true);
    const [fromSql] = await q(`SELECT answer, cached FROM superduper.rag('chunk_index', $1, 'llm', 3, p_rerank => 'reranker')`, [QUESTION]);
    expect(fromSql).toEqual({ answer: await reranked.answer, cached: true });
  });

  it('streams from an Anthropic LLM too, its text deltas only', async () => {
    const reply = await db.rag('chunk_index', QUESTION, { llm: 'claude' });
    const { pieces } = await read(reply);
    expect(pieces.length).toBeGreaterThan(3);
    expect(server.requests[0]).toMatchObject({ path: '/v1/messages', body: { stream: true } });
    const answer = pieces.join('');
    expect(answer).not.toMatch(/pondering/); // the thinking block's deltas
    expect(answer).toBe(standInAnswer(reply.prompt));
    const [fromSql] = await q(`SELECT answer, cached FROM superduper.rag('chunk_index', $1, 'claude')`, [QUESTION]);
    expect(fromSql).toEqual({ answer, cached: true });
  });

  it('answers in one piece with a model that does not stream (a function model)', async () => {
    const reply = await db.rag('chunk_index', QUESTION, { llm: 'stand_in' });
    const { pieces } = await read(reply);
    expect(pieces).toEqual([standInAnswer(reply.prompt)]);
    const [fromSql] = await q(`SELECT answer, cached FROM superduper.rag('chunk_index', $1, 'stand_in')`, [QUESTION]);
    expect(fromSql).toEqual({ answer: pieces[0], cached: true });
  });
});

describe('db.rag() failures cache nothing', () => {
  /** The error an answer ends with, and how many pieces came before it. */
  async function failure(reply: RagAnswer): Promise<{ error: Error & { code?: string }; pieces: number }> {
    let pieces = 0;
    try {
      for await (const _ of reply) pieces++;
    } catch (error) {
      await expect(reply.answer).rejects.toBe(error);
      await expect(reply.result).rejects.toBe(error);
      return { error: error as Error, pieces };
    }
    throw new Error('the answer did not fail');
  }

  it('retries an HTTP error before the answer starts, and fails clearly when it persists', async () => {
    server.inject({ status: 500 });
    const recovered = await db.rag('chunk_index', QUESTION, { llm: 'llm_once' });
    expect(await recovered.answer).toBe(standInAnswer(recovered.prompt));
    await q('DELETE FROM superduper._answer_cache');

    server.inject({ status: 503, times: 2 });
    const { error, pieces } = await failure(await db.rag('chunk_index', QUESTION, { llm: 'llm_once' }));
    expect(pieces).toBe(0);
    expect(error.message).toMatch(/^db\.rag\("chunk_index"\): model "llm_once" \(openai chat\): openai at http:\/\/127\.0\.0\.1:\d+\/v1 answered HTTP 503: injected HTTP 503 \(after 1 retry\)$/);
    expect(error.code).toBe('api_unavailable');
    expect(await cachedAnswers()).toBe(0);

    server.inject({ status: 401 });
    const refused = await failure(await db.rag('chunk_index', QUESTION, { llm: 'claude' }));
    expect(refused.error.message).toMatch(/model "claude" \(anthropic\): .* refused the API key from the environment variable RAG_STREAM_KEY/);
    expect(await cachedAnswers()).toBe(0);
  });

  it('fails a stream cut mid-way, after the pieces that came, whether the connection breaks or just closes', async () => {
    server.stream.cut = { after: 3, how: 'destroy' };
    const broken = await failure(await db.rag('chunk_index', QUESTION, { llm: 'llm' }));
    expect(broken.pieces).toBe(3);
    expect(broken.error.message).toMatch(/^db\.rag\("chunk_index"\): model "llm" \(openai chat\): .* cut the streamed answer off: the connection broke/);
    expect(broken.error.code).toBe('api_unavailable');

    server.stream.cut = { after: 2, how: 'end' };
    const closed = await failure(await db.rag('chunk_index', QUESTION, { llm: 'llm' }));
    expect(closed.pieces).toBe(2);
    expect(closed.error.message).toMatch(/cut the streamed answer off: the stream ended without "data: \[DONE\]"/);

    server.stream.cut = { after: 4, how: 'end' };
    const anthropic = await failure(await db.rag('chunk_index', QUESTION, { llm: 'claude' }));
    expect(anthropic.error.message).toMatch(/model "claude" \(anthropic\): .* the stream ended without a message_stop event/);

    server.stream.cut = undefined;
    server.stream.errorAfter = 3;
    const overloaded = await failure(await db.rag('chunk_index', QUESTION, { llm: 'claude' }));
    expect(overloaded.error.message).toMatch(/model "claude" \(anthropic\): .* stopped the streamed answer with an error: injected: Overloaded/);
    expect(await cachedAnswers()).toBe(0);

    // SQL asks the LLM itself: nothing half-stored stands in for the answer.
    server.stream.errorAfter = undefined;
    const [fromSql] = await q(`SELECT answer, cached FROM superduper.rag('chunk_index', $1, 'llm')`, [QUESTION]);
    expect(fromSql.cached).toBe(false);
  });

  it('stops when its signal aborts: the connection is closed and nothing is cached', async () => {
    server.stream.delayMs = 50;
    const controller = new AbortController();
    const reply = await db.rag('chunk_index', QUESTION, { llm: 'llm', signal: controller.signal });
    let pieces = 0;
    const error = await (async () => {
      try {
        for await (const _ of reply) {
          if (++pieces === 2) controller.abort();
        }
      } catch (thrown) {
        return thrown as Error & { code?: string };
      }
    })();
    expect(error?.code).toBe('aborted');
    expect(error?.message).toMatch(/^db\.rag\("chunk_index"\): model "llm": the answer was aborted after 2 pieces; nothing was cached$/);
    await expect(reply.answer).rejects.toBe(error);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(server.stream.abandoned).toBe(1);
    expect(server.stream.completed).toBe(0);
    expect(await cachedAnswers()).toBe(0);

    // Aborted before it starts: no search, no LLM call.
    await expect(db.rag('chunk_index', QUESTION, { llm: 'llm', signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'aborted' });
    // A model that does not stream is no longer waited for.
    const slow = new AbortController();
    const oneShot = await db.rag('chunk_index', QUESTION, { llm: 'stand_in', signal: slow.signal });
    slow.abort();
    await expect(oneShot.answer).rejects.toMatchObject({ code: 'aborted' });
    expect(server.requests).toHaveLength(1);
  });

  it('does not cache an answer under a model version applied while it was written', async () => {
    const api = { name: 'llm_changing', model: 'stand-in', baseUrl: `${server.url}/v1`, apiKeyEnv: 'RAG_STREAM_KEY' };
    await db.apply(openaiChat(api));
    server.stream.delayMs = 30;
    const reply = await db.rag('chunk_index', QUESTION, { llm: 'llm_changing' });
    let pieces = 0;
    for await (const _ of reply) {
      // A new version (another temperature) while the old one is answering.
      if (++pieces === 1) await db.apply(openaiChat({ ...api, temperature: 0.5 }));
    }
    expect(await reply.answer).toMatch(/\[\d\]/);
    expect(await cachedAnswers()).toBe(0);
    // The new version's own answer is kept.
    await (await db.rag('chunk_index', QUESTION, { llm: 'llm_changing' })).answer;
    expect(await cachedAnswers()).toBe(1);
  });

  it('refuses what superduper.rag() refuses, before calling any LLM', async () => {
    await expect(db.rag('chunk_index', QUESTION, { llm: 'nope' })).rejects.toThrow(/unknown model 'nope'/);
    await expect(db.rag('chunk_index', QUESTION, { llm: 'paragraphs' })).rejects.toThrow(/model "paragraphs" outputs/);
    await expect(db.rag('nope', QUESTION, { llm: 'llm' })).rejects.toThrow(/unknown vector index 'nope'/);
    await expect(db.rag('chunk_index', ' ', { llm: 'llm' })).rejects.toThrow(/the question is empty/);
    await expect(db.rag('chunk_index', QUESTION, { llm: 'llm', prompt: 'no placeholders' })).rejects.toThrow(/must hold \{context\} and \{question\}/);
    await expect(db.rag('chunk_index', QUESTION, {} as never)).rejects.toThrow(/options\.llm must name the LLM model/);
    expect(server.requests).toHaveLength(0);
  });
});
