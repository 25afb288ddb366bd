/**
 * A sidecar's metrics of API models (src/sidecar/metrics.ts, src/models/api/usage.ts):
 * requests by outcome, retries, the tokens the answers counted, and the
 * estimated cost at the provider's published price. The API is the test
 * stand-in speaking OpenAI's and Anthropic's wire formats (tests/helpers/api-servers.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { anthropicMessages, openaiEmbeddings } from '../../src/components/api-model.js';
import { listener } from '../../src/components/listener.js';
import { SidecarMetrics } from '../../src/sidecar/metrics.js';
import { startApiServer, type ApiServer } from '../helpers/api-servers.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
let server: ApiServer;
let metrics: SidecarMetrics;

const bodies = ['one two three', 'four five', 'six', 'seven eight nine ten'];

/** The registry's samples, as {"name{labels}": value}. */
async function samples(): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  for (const line of (await metrics.registry.metrics()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    result.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return result;
}

beforeAll(async () => {
  process.env.OPENAI_API_KEY = 'test-openai-key';
  process.env.ANTHROPIC_API_KEY = 'test-anthropic-key';
  server = await startApiServer();
  database = await createTestDatabase('api_metrics');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE docs (id int PRIMARY KEY, body text)`);
  await database.sql.query(`INSERT INTO docs SELECT i, b FROM unnest($1::text[]) WITH ORDINALITY AS t(b, i)`, [bodies]);
  metrics = new SidecarMetrics({ status: () => db.status({ countDone: false }), sidecar: () => ({ state: 'idle', outages: 0 }) });
  await db.start({ reconcileMs: 100, observer: metrics });
});

afterAll(async () => {
  metrics?.close();
  await db?.close();
  await database?.drop();
  await server?.close();
});

describe('API model metrics', () => {
  it('counts requests, retries, tokens and the estimated cost of an embeddings model with a published price', async () => {
    // One 503 first: that request is made again.
    server.inject({ status: 503 });
    await db.apply(
      openaiEmbeddings({ name: 'small "emb"', model: 'text-embedding-3-small', dim: 4, baseUrl: `${server.url}/v1`, batchSize: 2 }),
      listener({ name: 'docs_small', model: 'small "emb"', table: 'docs', keys: ['body'] }),
    );
    await db.waitFor('docs_small', { timeoutMs: 30_000 });
    const s = await samples();
    const labels = 'model="small \\"emb\\"",provider="openai",api_model="text-embedding-3-small"';
    // Four rows in batches of two: two requests answered, one retried after the 503.
    expect(s.get(`superduper_api_requests_total{${labels},outcome="ok"}`)).toBe(2);
    expect(s.get(`superduper_api_retries_total{${labels}}`)).toBe(1);
    // The stand-in counts a token a word: 10 words in all.
    expect(s.get(`superduper_api_tokens_total{${labels},direction="input"}`)).toBe(10);
    expect(s.get(`superduper_api_tokens_total{${labels},direction="output"}`)).toBe(0);
    // $0.02 per million input tokens.
    expect(s.get(`superduper_api_cost_usd_total{${labels}}`)).toBeCloseTo((10 * 0.02) / 1e6, 12);
  });

  it('counts a chat model\'s input and output tokens, with no cost for a model without a known price, and failed requests by their code', async () => {
    await database.sql.query(`CREATE TABLE questions (id int PRIMARY KEY, body text); INSERT INTO questions VALUES (1, 'why is the sky blue')`);
    await db.apply(
      anthropicMessages({ name: 'claude_test', model: 'claude-test', prompt: 'Answer: {body}', baseUrl: server.url }),
      listener({ name: 'answers', model: 'claude_test', table: 'questions', keys: ['body'], settings: { max_attempts: 1 } }),
    );
    await db.waitFor('answers', { timeoutMs: 30_000 });
    const s = await samples();
    const labels = 'model="claude_test",provider="anthropic",api_model="claude-test"';
    expect(s.get(`superduper_api_requests_total{${labels},outcome="ok"}`)).toBe(1);
    expect(s.get(`superduper_api_tokens_total{${labels},direction="input"}`)).toBe(6); // "Answer: why is the sky blue"
    expect(s.get(`superduper_api_tokens_total{${labels},direction="output"}`)).toBeGreaterThan(0);
    expect(s.has(`superduper_api_cost_usd_total{${labels}}`)).toBe(false);

    // A rejected input (HTTP 400) is counted by its code.
    server.rejectIf = (body) => (JSON.stringify(body).includes('forbidden') ? 'input too long' : undefined);
    await database.sql.query(`INSERT INTO questions VALUES (2, 'a forbidden question')`);
    await db.waitFor('answers', { timeoutMs: 30_000 }).catch(() => undefined);
    expect((await samples()).get(`superduper_api_requests_total{${labels},outcome="api_input"}`)).toBe(1);
  });
});
