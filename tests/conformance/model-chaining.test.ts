/**
 * Chaining across model kinds: an LLM (OpenAI-compatible chat, served by the
 * local wire-format server) summarises each article; the default embedder
 * embeds the summaries, read from the first listener's outputs table; a vector
 * index over those vectors answers superduper.like(), joined back to the
 * articles. Changes to an article flow down the whole chain.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { openaiChat } from '../../src/components/api-model.js';
import { listener } from '../../src/components/listener.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import type { Sidecar } from '../../src/sidecar/sidecar.js';
import { startApiServer, type ApiServer } from '../helpers/api-servers.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
let server: ApiServer;
let sidecar: Sidecar;

/** Each body's first sentence is what it is about; the rest is detail the summary drops. */
const articles: Array<[number, string]> = [
  [1, 'Customers cannot reset their passwords because the emailed link expires too soon. Support answered 40 tickets about it on Monday.'],
  [2, 'The monthly invoice run failed, so clients were not billed for March. Finance will send the bills next week.'],
  [3, 'The office is closed on Friday for the public holiday. The building alarm is set at six.'],
];

/** The fake LLM's summary: the first sentence of the text it is asked to summarise. */
const summarise = (body: string) => body.slice(0, body.indexOf('.') + 1);

const CHAIN = ['article_summary', 'summary_vectors'];

// A server and a database per test: the tests count the chat calls, and the
// first applies the chain that the others change.
beforeEach(async () => {
  process.env.OPENAI_API_KEY = 'chain-test-key';
  server = await startApiServer({ key: 'chain-test-key' });
  server.reply = (message) => {
    if (!message.startsWith('Summarise: ')) throw new Error(`unexpected prompt ${JSON.stringify(message)}`);
    return summarise(message.slice('Summarise: '.length));
  };
  database = await createTestDatabase('model_chaining');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE articles (id int PRIMARY KEY, title text, body text)`);
  for (const [id, body] of articles) await database.sql.query(`INSERT INTO articles VALUES ($1, $2, $3)`, [id, `article ${id}`, body]);
  sidecar = await db.start({ reconcileMs: 100 });
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
  await server?.close();
});

/** Each article's summary and the cosine distance between its stored vector and the embedding of that summary (and of its body). */
async function chain() {
  const { rows } = await database.sql.query(
    `SELECT a.id, s.output AS summary,
            v.output <=> superduper.embed('default-embedder', s.output) AS from_summary,
            v.output <=> superduper.embed('default-embedder', a.body) AS from_body
     FROM articles a
     LEFT JOIN superduper.out_article_summary s USING (id)
     LEFT JOIN superduper.out_summary_vectors v USING (id)
     ORDER BY a.id`,
  );
  return rows as Array<{ id: number; summary: string | null; from_summary: number | null; from_body: number | null }>;
}

/** The nearest article to a query, through the summaries' index, with its score. */
async function nearest(query: string, k = 1) {
  const { rows } = await database.sql.query(
    `SELECT a.id, a.title, l.score
     FROM superduper.like('summary_index', $1, $2) AS l
     JOIN articles a ON a.id = l.id::int
     ORDER BY l.score DESC`,
    [query, k],
  );
  return rows as Array<{ id: number; title: string; score: number }>;
}

/** The chain: the summariser's listener on articles, the default embedder's on its outputs, and an index. */
const applyChain = () =>
  db.apply(
    openaiChat({ name: 'summariser', model: 'gpt-test', prompt: 'Summarise: {body}', temperature: 0, baseUrl: `${server.url}/v1` }),
    listener({ name: 'article_summary', model: 'summariser', table: 'articles', keys: ['body'] }),
    // No model named: the default embedder. Its source is the first listener's outputs.
    listener({ name: 'summary_vectors', schema: 'superduper', table: 'out_article_summary', keys: ['output'] }),
    vectorIndex({ name: 'summary_index', listener: 'summary_vectors' }),
  );

/** The chain applied, and every article through it. */
async function computedChain(): Promise<void> {
  await applyChain();
  await db.waitUntilIdle({ listeners: CHAIN });
}

describe('an LLM summary feeding the default embedder feeding a vector index', () => {
  it('summarises every article, embeds the summaries (not the bodies), and like() finds the article by meaning', async () => {
    const applied = await applyChain();
    expect(applied.map((r) => [r.type, r.name, r.action])).toEqual([
      ['model', 'summariser', 'created'],
      ['listener', 'article_summary', 'created'],
      ['listener', 'summary_vectors', 'created'],
      ['vector_index', 'summary_index', 'created'],
    ]);
    const models = await database.sql.query(`SELECT name, model, source, output_type FROM superduper.listeners ORDER BY name`);
    expect(models.rows).toEqual([
      { name: 'article_summary', model: 'summariser', source: 'public.articles', output_type: 'text' },
      { name: 'summary_vectors', model: 'default-embedder', source: 'superduper.out_article_summary', output_type: 'public.vector(512)' },
    ]);

    await db.waitUntilIdle({ listeners: CHAIN });
    expect(await db.failures()).toEqual([]);
    // One chat call per article, with the prompt filled from its body.
    expect(server.requests.map((r) => r.body.messages.at(-1).content).sort()).toEqual(articles.map(([, body]) => `Summarise: ${body}`).sort());

    const rows = await chain();
    expect(rows.map((r) => [r.id, r.summary])).toEqual([
      [1, 'Customers cannot reset their passwords because the emailed link expires too soon.'],
      [2, 'The monthly invoice run failed, so clients were not billed for March.'],
      [3, 'The office is closed on Friday for the public holiday.'],
    ]);
    // The stored vector is the summary's embedding (up to float noise between
    // batches of different sizes), clearly not the body's.
    for (const row of rows) {
      expect(row.from_summary).toBeLessThan(1e-6);
      expect(row.from_body).toBeGreaterThan(0.05);
    }

    // Queries that paraphrase a summary find its article.
    expect(await nearest('I forgot my login and the recovery mail does not work')).toMatchObject([{ id: 1, title: 'article 1' }]);
    expect(await nearest('customers did not get their invoices')).toMatchObject([{ id: 2, title: 'article 2' }]);
    expect(await nearest('when is the workplace shut for the holidays')).toMatchObject([{ id: 3, title: 'article 3' }]);
    // A summary itself is found with a score of 1.
    const [exact] = await nearest('The office is closed on Friday for the public holiday.');
    expect(exact!.id).toBe(3);
    expect(exact!.score).toBeCloseTo(1, 5);
  });

  it('an update of an article flows through the chain: new summary, new vector, new search result', async () => {
    await computedChain();
    const lunch = async () => (await nearest('what food can I eat at lunch', 3)).find((hit) => hit.id === 3)!.score;
    const lunchBefore = await lunch();
    const calls = server.requests.length;

    await database.sql.query(
      `UPDATE articles SET body = 'The cafeteria now serves a vegetarian lunch menu every day. Prices are unchanged.' WHERE id = 3`,
    );
    await db.waitUntilIdle({ listeners: CHAIN });
    expect(await db.failures()).toEqual([]);
    // One more chat call, for article 3 alone.
    expect(server.requests.slice(calls).map((r) => r.body.messages.at(-1).content)).toEqual([
      'Summarise: The cafeteria now serves a vegetarian lunch menu every day. Prices are unchanged.',
    ]);
    const rows = await chain();
    expect(rows[2]!.summary).toBe('The cafeteria now serves a vegetarian lunch menu every day.');
    expect(rows[2]!.from_summary).toBeLessThan(1e-6);
    expect(rows.slice(0, 2).map((r) => r.summary)).toEqual([
      'Customers cannot reset their passwords because the emailed link expires too soon.',
      'The monthly invoice run failed, so clients were not billed for March.',
    ]);

    // The holiday query no longer finds article 3; the lunch query finds it, far nearer than before.
    expect((await nearest('when is the workplace shut for the holidays'))[0]!.id).toBe(1);
    expect(await nearest('what food can I eat at lunch')).toMatchObject([{ id: 3, title: 'article 3' }]);
    expect(await lunch()).toBeGreaterThan(lunchBefore + 0.2);

    // An update of a column the model does not read calls nothing.
    await database.sql.query(`UPDATE articles SET title = 'canteen' WHERE id = 3`);
    await db.waitUntilIdle({ listeners: CHAIN });
    expect(server.requests.length).toBe(calls + 1);
  });

  it('a delete removes the outputs all the way down, in the deleting statement', async () => {
    await computedChain();
    // No sidecar runs: the deletes cascade through the triggers of each table.
    await sidecar.stop();
    await database.sql.query(`DELETE FROM articles WHERE id = 1`);
    const left = await database.sql.query(
      `SELECT (SELECT array_agg(id ORDER BY id) FROM superduper.out_article_summary) AS summaries,
              (SELECT array_agg(id ORDER BY id) FROM superduper.out_summary_vectors) AS vectors`,
    );
    expect(left.rows[0]).toEqual({ summaries: [2, 3], vectors: [2, 3] });
    expect((await db.status()).map((s) => [s.listener, s.pending, s.done])).toEqual([
      ['article_summary', 0, 2],
      ['summary_vectors', 0, 2],
    ]);

    sidecar = await db.start({ reconcileMs: 100 }); // for the query embedding
    const hits = await nearest('I forgot my login and the recovery mail does not work', 10);
    expect(hits.map((h) => h.id).sort()).toEqual([2, 3]);
    expect(await db.failures()).toEqual([]);
  });
});
