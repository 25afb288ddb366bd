/**
 * The API model runtimes (src/models/api/) end to end: real listeners on the real
 * database, calling local servers that speak each API's wire format
 * (helpers/api-servers.ts). No network, no real keys.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { anthropicMessages, cohereEmbed, openaiChat, openaiEmbeddings } from '../../src/components/api-model.js';
import { listener } from '../../src/components/listener.js';
import { retryAfterMs } from '../../src/models/api/http.js';
import { prompting } from '../../src/models/api/prompt.js';
import type { Sidecar } from '../../src/sidecar/sidecar.js';
import { defaultReply, fakeEmbedding, startApiServer, type ApiServer } from '../helpers/api-servers.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
let worker: Sidecar;
let server: ApiServer;

/** Keeps failure tests fast: two attempts, 50 ms apart. */
const failFast = { max_attempts: 2, backoff_seconds: 0.05 };

beforeAll(async () => {
  process.env.OPENAI_API_KEY = 'test-openai-key';
  process.env.ANTHROPIC_API_KEY = 'test-anthropic-key';
  process.env.CO_API_KEY = 'test-cohere-key';
  process.env.SD_TEST_WRONG_KEY = 'not-the-right-key';
  delete process.env.SD_TEST_UNSET_KEY;
  database = await createTestDatabase('api_models');
  db = await connectTest(database);
  worker = await db.start({ reconcileMs: 100 });
});

afterAll(async () => {
  await worker?.stop();
  await db?.close();
  await database?.drop();
});

beforeEach(async () => {
  server = await startApiServer();
});

afterEach(async () => {
  await server.close();
});

/** A table `name` (id, body) with these bodies. */
async function table(name: string, bodies: string[]): Promise<void> {
  await database.sql.query(`CREATE TABLE ${name} (id int PRIMARY KEY, body text)`);
  await database.sql.query(`INSERT INTO ${name} SELECT i, b FROM unnest($1::text[]) WITH ORDINALITY AS t(b, i)`, [bodies]);
}

async function outputs(listenerName: string): Promise<unknown[]> {
  const result = await database.sql.query(`SELECT output FROM superduper.out_${listenerName} ORDER BY id`);
  return result.rows.map((row) => row.output);
}

/** pgvector's text form, '[1,2,3]', as numbers. */
const vector = (text: unknown) => JSON.parse(String(text)) as number[];

describe('openai', () => {
  it('embeddings: every row, in batches of batch_size, with the key from the environment', async () => {
    const bodies = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'];
    await table('oa_docs', bodies);
    await db.apply(
      openaiEmbeddings({ name: 'oa_emb', model: 'text-embedding-test', dim: 4, baseUrl: `${server.url}/v1`, batchSize: 3 }),
      listener({ name: 'oa_docs_emb', model: 'oa_emb', table: 'oa_docs', keys: ['body'] }),
    );
    await db.waitUntilIdle({ listeners: ['oa_docs_emb'] });

    // The server answers out of order; each vector is still its own row's.
    expect((await outputs('oa_docs_emb')).map(vector)).toEqual(bodies.map((body) => fakeEmbedding(body, 4)));
    const sizes = server.requests.map((r) => r.body.input.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(bodies.length);
    const [first] = server.requests;
    expect(first!.path).toBe('/v1/embeddings');
    expect(first!.headers.authorization).toBe('Bearer test-openai-key');
    expect(first!.body.model).toBe('text-embedding-test');
    expect(first!.body).not.toHaveProperty('dimensions');

    // A change is computed as it happens.
    await database.sql.query(`INSERT INTO oa_docs VALUES (11, 'lambda')`);
    await db.waitUntilIdle({ listeners: ['oa_docs_emb'] });
    expect(vector((await outputs('oa_docs_emb'))[10])).toEqual(fakeEmbedding('lambda', 4));
    expect(await db.failures('oa_docs_emb')).toEqual([]);

    // And from SQL, through the sidecar.
    const embedded = await database.sql.query(`SELECT superduper.embed('oa_emb', 'from SQL')::text AS v`);
    expect(vector(embedded.rows[0].v)).toEqual(fakeEmbedding('from SQL', 4));
  });

  it('sends dimensions when asked', async () => {
    await table('oa_dims', ['short']);
    await db.apply(
      openaiEmbeddings({ name: 'oa_dims_emb', model: 'text-embedding-3-small', dim: 3, sendDimensions: true, baseUrl: `${server.url}/v1` }),
      listener({ name: 'oa_dims_l', model: 'oa_dims_emb', table: 'oa_dims', keys: ['body'] }),
    );
    await db.waitUntilIdle({ listeners: ['oa_dims_l'] });
    expect(server.requests[0]!.body.dimensions).toBe(3);
    expect((await outputs('oa_dims_l')).map(vector)).toEqual([fakeEmbedding('short', 3)]);
  });

  it('holds at most `concurrency` calls in flight for a model, across the sidecar\'s batches', async () => {
    server.latencyMs = 60;
    await table('oa_conc', Array.from({ length: 24 }, (_, i) => `text number ${i}`));
    await db.apply(
      openaiEmbeddings({ name: 'oa_conc_emb', model: 'm', dim: 4, baseUrl: `${server.url}/v1`, batchSize: 1, concurrency: 3 }),
      // Two backfill ranges, so that both of the sidecar's lanes compute at once.
      listener({ name: 'oa_conc_l', model: 'oa_conc_emb', table: 'oa_conc', keys: ['body'], settings: { chunk_size: 12, batch_size: 12 } }),
    );
    await db.waitUntilIdle({ listeners: ['oa_conc_l'] });
    expect(server.requests).toHaveLength(24);
    expect(server.maxInFlight).toBe(3);
    expect(await outputs('oa_conc_l')).toHaveLength(24);
  });

  it('chat: fills the prompt, sends the system message, and answers superduper.predict from SQL', async () => {
    await table('oa_chat_docs', ['the cat sat', 'on the mat']);
    await db.apply(
      openaiChat({
        name: 'oa_chat',
        model: 'gpt-test',
        prompt: 'Summarise: {body}',
        system: 'Be brief.',
        temperature: 0,
        maxTokens: 50,
        baseUrl: `${server.url}/v1`,
      }),
      listener({ name: 'oa_chat_l', model: 'oa_chat', table: 'oa_chat_docs', keys: ['body'] }),
    );
    await db.waitUntilIdle({ listeners: ['oa_chat_l'] });
    expect(await outputs('oa_chat_l')).toEqual(['echo: Summarise: the cat sat', 'echo: Summarise: on the mat']);
    expect(server.requests[0]!.body).toMatchObject({
      model: 'gpt-test',
      temperature: 0,
      max_tokens: 50,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user' }],
    });

    const result = await database.sql.query(`SELECT superduper.predict('oa_chat', '"hello from SQL"') AS p`);
    expect(result.rows[0].p).toBe('echo: Summarise: hello from SQL');
  });

  it('postprocess: parses a fenced JSON completion and picks a field; a completion that does not parse fails its row alone', async () => {
    await table('oa_json', ['a good day', 'a bad day', 'broken']);
    server.reply = (message) => (message.includes('broken') ? 'Sorry, I cannot answer that.' : defaultReply(message));
    await db.apply(
      openaiChat({
        name: 'oa_label',
        model: 'gpt-label',
        prompt: 'Answer in JSON: {body}',
        postprocess: { json: true, field: 'label.name' },
        output: { type: 'text' },
        baseUrl: `${server.url}/v1`,
      }),
      openaiChat({ name: 'oa_whole', model: 'gpt-whole', prompt: 'Answer in JSON: {body}', postprocess: { json: true }, baseUrl: `${server.url}/v1` }),
      listener({ name: 'oa_label_l', model: 'oa_label', table: 'oa_json', keys: ['body'], settings: failFast }),
      listener({ name: 'oa_whole_l', model: 'oa_whole', table: 'oa_json', keys: ['body'], filter: `body <> 'broken'` }),
    );
    await db.waitUntilIdle({ listeners: ['oa_label_l', 'oa_whole_l'] });
    expect(await outputs('oa_label_l')).toEqual(['positive', 'negative']);
    expect(await outputs('oa_whole_l')).toEqual([
      { subject: 'a good day', words: 3, label: { name: 'positive' } },
      { subject: 'a bad day', words: 3, label: { name: 'negative' } },
    ]);
    const [failure] = await db.failures('oa_label_l');
    expect(failure!.primary_key).toEqual(['3']);
    expect(failure!.error).toMatch(/^model "oa_label" \(openai chat\): the completion is not JSON \(.*\); it starts "Sorry, I cannot answer that\."$/);
    // The rows that succeeded in the failed batch were not paid for twice: one
    // call per row, and one more for the bad row's second attempt.
    expect(server.requests.filter((r) => r.body.model === 'gpt-label')).toHaveLength(3 + 1);
  });
});

describe('anthropic', () => {
  it('fills named placeholders from a two-key listener, and joins the text blocks of the reply', async () => {
    await database.sql.query(`CREATE TABLE an_docs (id int PRIMARY KEY, title text, body text);
      INSERT INTO an_docs VALUES (1, 'Cats', 'They sleep a lot.'), (2, 'Dogs', NULL)`);
    await db.apply(
      anthropicMessages({ name: 'an_summary', model: 'claude-test', prompt: 'Title: {title}\nText: {body}\n{{not a placeholder}}', system: 'One line.', baseUrl: server.url }),
      listener({ name: 'an_docs_l', model: 'an_summary', table: 'an_docs', keys: ['title', 'body'] }),
    );
    await db.waitUntilIdle({ listeners: ['an_docs_l'] });
    expect(await outputs('an_docs_l')).toEqual([
      'echo: Title: Cats\nText: They sleep a lot.\n{not a placeholder}',
      'echo: Title: Dogs\nText: \n{not a placeholder}',
    ]);
    const [request] = server.requests;
    expect(request!.path).toBe('/v1/messages');
    expect(request!.headers['x-api-key']).toBe('test-anthropic-key');
    expect(request!.headers['anthropic-version']).toBe('2023-06-01');
    expect(request!.body).toMatchObject({ model: 'claude-test', max_tokens: 1024, system: 'One line.' });
  });

  it('a rejected key fails the rows clearly, without a request per row', async () => {
    await table('an_bad_key', ['one', 'two', 'three']);
    const strict = await startApiServer({ key: 'the-right-key' });
    try {
      await db.apply(
        anthropicMessages({ name: 'an_bad', model: 'claude-test', prompt: '{body}', apiKeyEnv: 'SD_TEST_WRONG_KEY', baseUrl: strict.url }),
        listener({ name: 'an_bad_l', model: 'an_bad', table: 'an_bad_key', keys: ['body'], settings: failFast }),
      );
      await db.waitUntilIdle({ listeners: ['an_bad_l'] });
      const failures = await db.failures('an_bad_l');
      expect(failures).toHaveLength(3);
      expect(failures[0]!.error).toContain(
        `model "an_bad" (anthropic): anthropic at ${strict.url} refused the API key from the environment variable SD_TEST_WRONG_KEY (HTTP 401): invalid x-api-key`,
      );
      expect(failures[0]!.error).toContain('hint: Set SD_TEST_WRONG_KEY to a valid key');
      expect(failures[0]!.error).not.toContain('not-the-right-key');
      // One call per row per attempt: the row-by-row pass after a failed batch reuses its outcome.
      expect(strict.requests).toHaveLength(3 * failFast.max_attempts);
    } finally {
      await strict.close();
    }
  });
});

describe('cohere', () => {
  it('embeds every row with input_type and float embeddings', async () => {
    const bodies = ['red', 'green', 'blue', 'cyan', 'magenta'];
    await table('co_docs', bodies);
    await db.apply(
      cohereEmbed({ name: 'co_emb', model: 'embed-test', dim: 4, batchSize: 2, baseUrl: server.url }),
      listener({ name: 'co_docs_l', model: 'co_emb', table: 'co_docs', keys: ['body'] }),
    );
    await db.waitUntilIdle({ listeners: ['co_docs_l'] });
    expect((await outputs('co_docs_l')).map(vector)).toEqual(bodies.map((body) => fakeEmbedding(body, 4)));
    expect(server.requests.map((r) => r.body.texts.length)).toEqual([2, 2, 1]);
    expect(server.requests[0]!).toMatchObject({
      path: '/v2/embed',
      headers: { authorization: 'Bearer test-cohere-key' },
      body: { model: 'embed-test', input_type: 'search_document', embedding_types: ['float'] },
    });
  });
});

describe('retries and failures', () => {
  const embeddings = (name: string, extra: Record<string, unknown> = {}) => ({
    type: 'model',
    name,
    runtime: 'openai',
    output: { type: 'vector', dim: 4 },
    config: { kind: 'embeddings', model: 'm', base_url: `${server.url}/v1`, ...extra },
  });

  it('retries a 429 after the Retry-After delay', async () => {
    await table('rt_429', ['x', 'y']);
    server.inject({ status: 429, retryAfter: '1' });
    await db.apply(embeddings('rt_429_emb'), listener({ name: 'rt_429_l', model: 'rt_429_emb', table: 'rt_429', keys: ['body'] }));
    await db.waitUntilIdle({ listeners: ['rt_429_l'] });
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]!.at - server.requests[0]!.at).toBeGreaterThanOrEqual(990);
    expect(await outputs('rt_429_l')).toHaveLength(2);
    expect(await db.failures('rt_429_l')).toEqual([]);
  });

  it('retries a 500 with backoff', async () => {
    await table('rt_500', ['x', 'y']);
    server.inject({ status: 500, times: 2 });
    await db.apply(embeddings('rt_500_emb'), listener({ name: 'rt_500_l', model: 'rt_500_emb', table: 'rt_500', keys: ['body'] }));
    await db.waitUntilIdle({ listeners: ['rt_500_l'] });
    expect(server.requests).toHaveLength(3);
    // Backoff: about 0.5 s, then about 1 s (with jitter of up to a quarter less).
    expect(server.requests[1]!.at - server.requests[0]!.at).toBeGreaterThanOrEqual(370);
    expect(server.requests[2]!.at - server.requests[1]!.at).toBeGreaterThanOrEqual(740);
    expect(await outputs('rt_500_l')).toHaveLength(2);
  });

  it('does not wait within a batch for a Retry-After of minutes: the rows come back with the listener\'s backoff', async () => {
    await table('rt_later', ['x']);
    server.inject({ status: 429, retryAfter: '120', times: 2 });
    await db.apply(
      embeddings('rt_later_emb'),
      listener({ name: 'rt_later_l', model: 'rt_later_emb', table: 'rt_later', keys: ['body'], settings: { max_attempts: 3, backoff_seconds: 0.05 } }),
    );
    await db.waitUntilIdle({ listeners: ['rt_later_l'] });
    expect(server.requests).toHaveLength(3);
    expect(await outputs('rt_later_l')).toHaveLength(1);
  });

  it('gives up after max_retries, naming the API and its answer', async () => {
    await table('rt_down', ['x']);
    server.inject({ status: 503, times: 100 });
    await db.apply(
      embeddings('rt_down_emb', { max_retries: 1 }),
      listener({ name: 'rt_down_l', model: 'rt_down_emb', table: 'rt_down', keys: ['body'], settings: failFast }),
    );
    await db.waitUntilIdle({ listeners: ['rt_down_l'] });
    const [failure] = await db.failures('rt_down_l');
    expect(failure!.error).toBe(`model "rt_down_emb" (openai embeddings): openai at ${server.url}/v1 answered HTTP 503: injected HTTP 503 (after 1 retry)`);
    expect(server.requests).toHaveLength(2 * failFast.max_attempts);
  });

  it('a wrong base_url fails every row with the answer and a hint, each row sent once per attempt', async () => {
    await table('rt_404', ['x', 'y']);
    await db.apply(
      embeddings('rt_404_emb', { base_url: `${server.url}/nope` }),
      listener({ name: 'rt_404_l', model: 'rt_404_emb', table: 'rt_404', keys: ['body'], settings: failFast }),
    );
    await db.waitUntilIdle({ listeners: ['rt_404_l'] });
    const failures = await db.failures('rt_404_l');
    expect(failures.map((f) => f.error)).toEqual(
      Array(2).fill(
        `model "rt_404_emb" (openai embeddings): openai at ${server.url}/nope rejected the request to ${server.url}/nope/embeddings (HTTP 404): no route /nope/embeddings\nhint: Check config.model and config.base_url.`,
      ),
    );
    // No row is sent again alone to isolate a bad one (a 404 is about the setup,
    // not an input). Whether an attempt's two rows go in one call or, claimed by
    // two of the sidecar's lanes at once, in two, is the sidecar's scheduling.
    const sent = server.requests.flatMap((r) => r.body.input as string[]);
    expect(sent.filter((input) => input === 'x')).toHaveLength(failFast.max_attempts);
    expect(sent.filter((input) => input === 'y')).toHaveLength(failFast.max_attempts);
  });

  it('a key missing from the environment fails clearly, without calling the API', async () => {
    await table('rt_nokey', ['x']);
    await db.apply(
      embeddings('rt_nokey_emb', { api_key_env: 'SD_TEST_UNSET_KEY' }),
      listener({ name: 'rt_nokey_l', model: 'rt_nokey_emb', table: 'rt_nokey', keys: ['body'], settings: failFast }),
    );
    await db.waitUntilIdle({ listeners: ['rt_nokey_l'] });
    const [failure] = await db.failures('rt_nokey_l');
    expect(failure!.error).toMatch(
      /^could not load model "rt_nokey_emb": model "rt_nokey_emb" \(openai embeddings\): the environment variable SD_TEST_UNSET_KEY \(config.api_key_env\) is not set in this sidecar\nhint: Set SD_TEST_UNSET_KEY to your openai API key/,
    );
    expect(server.requests).toHaveLength(0);
  });

  it('a key written into the config is refused at apply time, stored nowhere, and not repeated in the error', async () => {
    await expect(db.apply(embeddings('rt_literal_emb', { api_key: 'sk-live-do-not-store' }))).rejects.toThrow(
      /^superduper: model "rt_literal_emb": config holds an API key or secret; keys are never stored in the database$/,
    );
    await expect(db.apply(embeddings('rt_pasted_emb', { api_key_env: 'sk-live-do-not-store' }))).rejects.toThrow(
      /^superduper: model "rt_pasted_emb": config.api_key_env must name an environment variable \(letters, digits and _\), not hold the key itself$/,
    );
    const stored = await database.sql.query(`SELECT count(*)::int AS n FROM superduper._models WHERE spec::text LIKE '%sk-live%'`);
    expect(stored.rows[0].n).toBe(0);
    expect(server.requests).toHaveLength(0);
  });

  it('the sidecar refuses a key in a config too (a model stored before the check, or written around it)', async () => {
    await table('rt_literal', ['x']);
    // The key is written into the stored model before any listener uses it, so
    // that the sidecar has never read the model without it.
    await db.apply(embeddings('rt_literal_emb', {}));
    await database.sql.query(`UPDATE superduper._models SET config = config || '{"api_key": "sk-live-do-not-store"}', spec_hash = 'edited' WHERE name = 'rt_literal_emb'`);
    await db.apply(listener({ name: 'rt_literal_l', model: 'rt_literal_emb', table: 'rt_literal', keys: ['body'], settings: failFast }));
    await database.sql.query(`INSERT INTO rt_literal VALUES (2, 'y')`);
    await db.waitUntilIdle({ listeners: ['rt_literal_l'] });
    const failures = await db.failures('rt_literal_l');
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) {
      expect(failure.error).toContain('model "rt_literal_emb" (openai embeddings): config.api_key looks like an API key, and keys are not accepted');
      expect(failure.error).not.toContain('sk-live');
    }
  });

  it('a 400 on a batch is retried row by row, so only the bad row fails', async () => {
    await table('rt_400', ['fine', 'also fine', 'too long', 'fine too']);
    server.rejectIf = (body) => (body.input.includes('too long') ? "This model's maximum context length is 8192 tokens" : undefined);
    await db.apply(
      embeddings('rt_400_emb', { batch_size: 4 }),
      listener({ name: 'rt_400_l', model: 'rt_400_emb', table: 'rt_400', keys: ['body'], settings: failFast }),
    );
    await db.waitUntilIdle({ listeners: ['rt_400_l'] });
    expect(await outputs('rt_400_l')).toHaveLength(3);
    const [failure] = await db.failures('rt_400_l');
    expect(failure!.primary_key).toEqual(['3']);
    expect(failure!.error).toBe(
      `model "rt_400_emb" (openai embeddings): openai at ${server.url}/v1 rejected the request to ${server.url}/v1/embeddings (HTTP 400): This model's maximum context length is 8192 tokens`,
    );
    // The batch, each row alone, then the bad row's second attempt; a 400 is not retried by the client.
    expect(server.requests.map((r) => r.body.input.length)).toEqual([4, 1, 1, 1, 1, 1]);
  });
});

describe('pieces', () => {
  it('Retry-After is seconds or an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterMs('2', now)).toBe(2000);
    expect(retryAfterMs('0.5', now)).toBe(500);
    expect(retryAfterMs('Wed, 01 Jan 2025 00:00:03 GMT', now)).toBe(3000);
    expect(retryAfterMs('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });

  it('prompt templates: one value fills the only placeholder; several need named columns', () => {
    const one = prompting('m', { prompt: 'Translate {text} please; reply as {"t": "..."}' });
    expect(one.render('bonjour')).toBe('Translate bonjour please; reply as {"t": "..."}');
    const two = prompting('m', { prompt: '{a} and {b}' });
    expect(two.render({ a: 1, b: ['x'] })).toBe('1 and ["x"]');
    expect(() => two.render('scalar')).toThrow('m: the prompt has placeholders {a}, {b} but the row is one value: key the listener by those columns');
    expect(() => two.render({ a: 1 })).toThrow('m: the prompt\'s placeholder {b} is not a column of the row (it has a)');
    expect(() => prompting('m', { prompt: 'no placeholder' })).toThrow(/config.prompt has no \{placeholder\}/);
    expect(prompting('m', {}).render('as is')).toBe('as is');
    const field = prompting('m', { postprocess: { field: 'scores.0' } });
    expect(field.finish('{"scores": [0.5, 0.1]}')).toBe(0.5);
    expect(() => field.finish('{"scores": []}')).toThrow('m: the completion has no field "scores.0" (config.postprocess.field); it starts "{\\"scores\\": []}"');
  });
});
