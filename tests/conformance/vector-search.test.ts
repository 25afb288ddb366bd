import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import { onnxModel } from '../../src/components/model.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { wordEmbeddingModel } from '../../src/models/onnx-builder.js';
import { conceptModel, conceptVector } from '../helpers/concepts.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';
import { testBackendCapabilities } from '../helpers/backends.js';

let database: TestDatabase;
let db: Superduper;

const documents: Array<[number, string, string]> = [
  [1, 'my cat is a lazy feline who likes to meow', 'pets'],
  [2, 'the puppy will bark at every dog', 'pets'],
  [3, 'how to reset the password of your account', 'help'],
  [4, 'stock market shares fell, finance news', 'news'],
  [5, 'a fast car with a big engine to drive', 'news'],
  [6, 'a pizza recipe: cook the pasta, then the food', 'food'],
];

/**
 * The six documents, their concepts and docs_index, with a sidecar, in a
 * database for the tests of the enclosing describe. Each describe has its own:
 * the tests add rows that change which are nearest, listeners for models only
 * their sidecar knows, and one stops that sidecar.
 */
function useSearchDatabase(label: string): void {
  beforeAll(async () => {
    database = await createTestDatabase(label);
    db = await connectTest(database);
    await database.sql.query(`CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL, topic text NOT NULL)`);
    for (const [id, body, topic] of documents) await database.sql.query('INSERT INTO docs VALUES ($1, $2, $3)', [id, body, topic]);
    await db.apply(
      conceptModel(),
      listener({ name: 'docs_concepts', model: 'concepts', table: 'docs', keys: ['body'] }),
      vectorIndex({ name: 'docs_index', listener: 'docs_concepts' }),
    );
    await db.start({ reconcileMs: 200 });
    await db.waitUntilIdle();
  });

  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });
}

/** A jsonb model, for superduper.predict. */
const topicOf = functionModel({
  name: 'topic_of',
  output: { type: 'jsonb' },
  predict: (inputs: Array<{ text: string }>) => inputs.map(({ text }) => ({ label: /cat|dog/.test(text) ? 'pets' : 'other', length: text.length })),
});

/** 300 more rows, all about cats, and a few rows of the topic 'rare'. */
async function catsAndRareRows(): Promise<void> {
  await database.sql.query(`INSERT INTO docs SELECT 100 + g, 'cat kitten feline meow ' || g, 'pets' FROM generate_series(1, 300) g ON CONFLICT (id) DO NOTHING`);
  await database.sql.query(`INSERT INTO docs SELECT 500 + g, 'cat feline with a car ' || g, 'rare' FROM generate_series(1, 4) g ON CONFLICT (id) DO NOTHING`);
  await db.waitUntilIdle();
}

const like = async (query: string, k = 3, filter?: unknown) =>
  (
    await database.sql.query<{ id: string; key: string[]; score: number }>(
      'SELECT id, key, score FROM superduper.like($1, $2, $3, $4)',
      [`docs_index`, query, k, filter === undefined ? null : JSON.stringify(filter)],
    )
  ).rows;

describe('vector index', () => {
  useSearchDatabase('vector_search_index');

  it('puts an HNSW index on the listener outputs, with the cosine operator class', async () => {
    const indexes = await database.sql.query(`SELECT indexdef FROM pg_indexes WHERE tablename = 'out_docs_concepts' AND indexdef LIKE '%hnsw%'`);
    expect(indexes.rows).toHaveLength(1);
    expect(indexes.rows[0].indexdef).toMatch(/USING hnsw \(output vector_cosine_ops\) WITH \(m='16', ef_construction='64'\)/);
    const view = await database.sql.query(`SELECT name, listener, query_model, measure, ef_search FROM superduper.vector_indexes`);
    expect(view.rows).toEqual([{ name: 'docs_index', listener: 'docs_concepts', query_model: 'concepts', measure: 'cosine', ef_search: 100 }]);
  });

  it('re-applying is a no-op; another measure builds a new HNSW index beside the current one, then swaps it in', async () => {
    const hnsw = async () =>
      (await database.sql.query(`SELECT indexdef FROM pg_indexes WHERE tablename = 'out_docs_concepts' AND indexdef LIKE '%hnsw%'`)).rows.map(
        (r) => r.indexdef as string,
      );
    const [same] = await db.apply(vectorIndex({ name: 'docs_index', listener: 'docs_concepts' }));
    expect(same).toMatchObject({ action: 'unchanged', version: 1 });
    const [changed] = await db.apply(vectorIndex({ name: 'docs_index', listener: 'docs_concepts', measure: 'l2' }));
    expect(changed).toMatchObject({ action: 'rebuilding', version: 2 });
    // The sidecar (reconciling every 200 ms) builds it concurrently and swaps it in.
    await eventually(async () => (await hnsw()).length === 1 && /vector_l2_ops/.test((await hnsw())[0]!), 20_000, 'the l2 index swapped in');
    const view = await database.sql.query(`SELECT version, state, measure FROM superduper.vector_indexes WHERE name = 'docs_index'`);
    expect(view.rows).toEqual([{ version: 2, state: 'current', measure: 'l2' }]);
    await db.apply(vectorIndex({ name: 'docs_index', listener: 'docs_concepts' }));
    await eventually(async () => /vector_cosine_ops/.test((await hnsw()).join()) && (await hnsw()).length === 1, 20_000, 'cosine back');
  });
});

describe('superduper.like', () => {
  useSearchDatabase('vector_search_like');

  it('returns the nearest rows first, joinable with the source table', async () => {
    const hits = await like('my kitten keeps meowing at the cat next door');
    expect(hits[0]).toMatchObject({ id: '1', key: ['1'] });
    expect(hits.map((h) => h.score)).toEqual([...hits.map((h) => h.score)].sort((a, b) => b - a));
    const joined = await database.sql.query(
      `SELECT d.id, d.topic, l.score FROM superduper.like('docs_index', 'forgot my login password', 2) AS l
       JOIN docs d ON d.id = l.id::integer ORDER BY l.score DESC`,
    );
    expect(joined.rows[0]).toMatchObject({ id: 3, topic: 'help' });
    expect(joined.rows).toHaveLength(2);
  });

  it('accepts a vector as the query', async () => {
    const vector = `[${conceptVector('stock market').join(',')}]`;
    const hits = await database.sql.query(`SELECT id FROM superduper.like('docs_index', $1::vector, 1)`, [vector]);
    expect(hits.rows).toEqual([{ id: '4' }]);
  });

  it('reflects inserts, updates and deletes once their outputs are written', async () => {
    await database.sql.query(`INSERT INTO docs VALUES (7, 'engine oil for your vehicle and car', 'news')`);
    await database.sql.query(`UPDATE docs SET body = 'pasta with pizza sauce, a food recipe to cook tonight' WHERE id = 5`);
    await database.sql.query(`DELETE FROM docs WHERE id = 6`);
    await db.waitUntilIdle();
    const cars = await like('car engine vehicle drive', 1);
    expect(cars[0]?.id).toBe('7');
    const food = await like('pizza recipe food', 6);
    expect(food[0]?.id).toBe('5');
    expect(food.map((h) => h.id)).not.toContain('6');
  });

  it('the query embedding is cached: a repeated query needs no sidecar', async () => {
    await like('a cached question about stock shares', 1);
    await db.close();
    try {
      const cached = await like('a cached question about stock shares', 1);
      expect(cached[0]?.id).toBe('4');
      const client = await database.sql.connect();
      try {
        await client.query(`SET superduper.request_timeout = '300ms'`);
        // On a server the call waits for a sidecar; the embedded database has no one to ask.
        const noAnswer = testBackendCapabilities().modelCallsThroughDblink
          ? /no sidecar answered within 00:00:00.3 \(model "concepts"\)/
          : /model "concepts" cannot be called from SQL here: this database has no dblink, and no superduper process hosting it answered/;
        await expect(client.query(`SELECT * FROM superduper.like('docs_index', 'never asked before', 1)`)).rejects.toThrow(noAnswer);
        if (testBackendCapabilities().modelCallsThroughDblink) {
          // The wait runs on the request connection in slices: a cancel (here
          // statement_timeout) ends the call between them, and leaves that
          // connection ready for the session's next call.
          await client.query(`SET statement_timeout = '150ms'`);
          await expect(client.query(`SELECT * FROM superduper.like('docs_index', 'cancelled while waiting', 1)`)).rejects.toThrow(
            /canceling statement due to statement timeout/,
          );
          await client.query('RESET statement_timeout');
          await expect(client.query(`SELECT * FROM superduper.like('docs_index', 'asked after the cancel', 1)`)).rejects.toThrow(noAnswer);
        }
      } finally {
        client.release();
      }
    } finally {
      db = await connectTest(database);
      await db.apply(conceptModel());
      await db.start({ reconcileMs: 200 });
    }
  });
});

describe('superduper.embed', () => {
  useSearchDatabase('vector_search_embed');

  it('returns a vector, and ORDER BY <=> embed(...) LIMIT uses the HNSW index', async () => {
    const embedded = await database.sql.query(`SELECT superduper.embed('concepts', 'puppy')::text AS v`);
    const vector = JSON.parse(embedded.rows[0].v) as number[];
    expect(vector).toHaveLength(6);
    expect(vector[1]).toBeGreaterThan(0.9);
    const client = await database.sql.connect();
    try {
      await client.query('SET enable_seqscan = off'); // with only a few hundred rows the planner would rather not
      const plan = await client.query(
        `EXPLAIN SELECT id FROM superduper.out_docs_concepts ORDER BY output <=> superduper.embed('concepts', 'puppy') LIMIT 10`,
      );
      const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(text).toMatch(/Index Scan using _vi\d+_hnsw_l\d+ on out_docs_concepts/);
    } finally {
      client.release();
    }
  });

  it('answers with the current version of a model after it changes (never one the sidecar knew before)', async () => {
    // ONNX models (loaded by name and version), every word on one axis: v1 on x, v2 on y.
    const axis = (version: string, hot: number) =>
      onnxModel({
        name: 'axis',
        file: wordEmbeddingModel({ vocabSize: 64, dim: 2, embeddings: Float32Array.from({ length: 128 }, (_, i) => (i % 2 === hot ? 1 : 0)) }),
        output: { type: 'vector', dim: 2 },
        tokenizer: { type: 'words', vocab_size: 64, max_length: 8 },
      });
    const embed = async (text: string) =>
      JSON.parse((await database.sql.query(`SELECT superduper.embed('axis', $1)::text AS v`, [text])).rows[0].v) as number[];
    await db.apply(axis('v1', 0));
    expect(await embed('first question')).toEqual([1, 0]);
    expect(await embed('second question')).toEqual([1, 0]); // the sidecar knows v1 now
    await db.apply(axis('v2', 1));
    expect(await embed('third question')).toEqual([0, 1]);
    expect(await embed('first question')).toEqual([0, 1]); // cached under v1 only
  });
});

describe('superduper.predict', () => {
  useSearchDatabase('vector_search_predict');

  it('returns a model output as JSON', async () => {
    await db.apply(topicOf);
    const result = await database.sql.query(`SELECT superduper.predict('topic_of', '{"text": "a dog"}') AS p`);
    expect(result.rows[0].p).toEqual({ label: 'pets', length: 5 });
    expect(await db.predict('topic_of', { text: 'stocks' })).toEqual({ label: 'other', length: 6 });
  });
});

describe('from TypeScript', () => {
  useSearchDatabase('vector_search_typescript');

  it('db.search', async () => {
    const hits = await db.search('docs_index', 'puppy bark', { k: 2 });
    expect(hits[0]).toMatchObject({ id: '2', key: ['2'] });
  });

  // (Among the 300 near-identical rows about cats of the filter tests, the HNSW
  // index often misses the one row about passwords: this needs none of them.)
  it('db.table().like() gives the source rows, with their score', async () => {
    const top = await (await db.table('docs').like({ body: 'forgot password' }, { index: 'docs_index', k: 1 })).execute();
    expect(top).toEqual([{ id: 3, body: 'how to reset the password of your account', topic: 'help', score: expect.any(Number) }]);
  });
});

describe('filters, among many rows about cats', () => {
  useSearchDatabase('vector_search_filters');

  it('a filter is applied during the search: k rows whenever k rows match', async () => {
    // 300 more rows, all about cats, and a few rows of the topic searched for.
    await catsAndRareRows();
    const filtered = await like('cat kitten', 4, { topic: 'rare' });
    expect(filtered.map((h) => h.id).sort()).toEqual(['501', '502', '503', '504']);
    // The same when the index scan gives up early and the exact search takes over.
    const client = await database.sql.connect();
    try {
      await client.query(`SET hnsw.max_scan_tuples = 10`);
      const exact = await client.query(`SELECT id FROM superduper.like('docs_index', 'cat kitten', 4, '{"topic": "rare"}')`);
      expect(exact.rows.map((r) => r.id).sort()).toEqual(['501', '502', '503', '504']);
    } finally {
      client.release();
    }
    const several = await like('cat', 3, { topic: ['rare', 'help'], id: { '>=': 3 } });
    expect(several).toHaveLength(3);
  });

  it('without a filter too, k rows whenever k rows exist: k above ef_search, and a row the graph search does not reach', async () => {
    await catsAndRareRows();
    const total = (await database.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM docs')).rows[0]!.n;
    // An HNSW scan returns at most ef_search (100 here) rows.
    expect(await like('cat kitten', 200)).toHaveLength(200);
    const all = await like('cat kitten', 1000);
    expect(all).toHaveLength(total);
    expect(new Set(all.map((h) => h.id)).size).toBe(total);
    expect(all.map((h) => h.score)).toEqual([...all.map((h) => h.score)].sort((a, b) => b - a));
  });

  it.runIf(testBackendCapabilities().concurrentSessions)('k rows when the nearest outputs are dead row versions', async () => {
    await catsAndRareRows();
    // Every cat row's output rewritten three times while an open snapshot (a
    // session of its own: not on the embedded database) keeps the old
    // versions from being vacuumed: they stay in the graph, nearest to the
    // query, and the index scan's candidates are mostly dead.
    const snapshot = new pg.Client({ connectionString: database.uri });
    await snapshot.connect();
    try {
      await snapshot.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await snapshot.query('SELECT count(*) FROM docs');
      for (const round of [1, 2, 3]) {
        // A vector of its own per row (equal vectors share one graph node),
        // a little different each round: old and new versions as near.
        await database.sql.query(
          `UPDATE docs SET body = repeat('cat ', 20 + ${round}) || repeat('dog ', id % 10) || repeat('car ', id / 10 % 10) || repeat('stock ', id / 100 % 10) WHERE id BETWEEN 101 AND 400`,
        );
        await db.waitUntilIdle();
      }
      const top = await like('cat kitten', 90);
      expect(top).toHaveLength(90);
      expect(new Set(top.map((h) => h.id)).size).toBe(90);
      // The same through the vector form.
      const vector = `[${conceptVector('cat kitten').join(',')}]`;
      const byVector = await database.sql.query('SELECT id FROM superduper.like($1, $2::vector, 90)', ['docs_index', vector]);
      expect(byVector.rows).toHaveLength(90);
    } finally {
      await snapshot.end();
    }
  });

  it('db.table().like() composes with Kysely, with pre- and post-filter forms', async () => {
    await catsAndRareRows();
    const pre = await db.table('docs').like({ body: 'cat kitten' }, { index: 'docs_index', k: 4, filter: { topic: 'rare' } });
    const preRows = await pre.select(['t.topic']).execute();
    expect(preRows).toHaveLength(4);
    expect(preRows.every((r) => r.topic === 'rare')).toBe(true);

    // Post-filter: the top 4 first (all about cats, topic pets), then the where.
    const post = await db.table('docs').like({ body: 'cat kitten' }, { index: 'docs_index', k: 4 });
    const postRows = await post.where('t.topic', '=', 'rare').execute();
    expect(postRows).toHaveLength(0);
  });
});

describe('the dispatch to each index', () => {
  useSearchDatabase('vector_search_dispatch');

  // like() calls each index's search function by its id (text queries) or its
  // name (vector queries), rendered into like() whenever the indexes change
  // (sql/functions/075_like.sql); an index it has no branch for is looked up.
  const byVector = async (index: string, query: string, k = 3) =>
    (
      await database.sql.query<{ id: string }>('SELECT id FROM superduper.like($1, $2::vector, $3)', [index, `[${conceptVector(query).join(',')}]`, k])
    ).rows.map((r) => r.id);
  const byText = async (index: string, query: string, k = 3) =>
    (await database.sql.query<{ id: string }>('SELECT id FROM superduper.like($1, $2, $3)', [index, query, k])).rows.map((r) => r.id);

  it('finds an index with a hostile name, by text and by vector, and names it in errors', async () => {
    const hostile = `Pets' "index"; DROP TABLE docs; --`;
    await db.apply(vectorIndex({ name: hostile, listener: 'docs_concepts' }));
    expect(await byVector(hostile, 'cat')).toEqual(await byVector('docs_index', 'cat'));
    expect(await byText(hostile, 'cat')).toEqual(await byText('docs_index', 'cat'));
    expect((await byVector(hostile, 'cat'))[0]).toBe('1');
    await expect(database.sql.query(`SELECT * FROM superduper.like($1, '[1,2,3]'::vector)`, [hostile])).rejects.toThrow(
      `index "${hostile}" holds vectors of 6 dimensions; the query has 3`,
    );
    await expect(database.sql.query(`SELECT * FROM superduper.like($1, '[1,2,3]'::vector)`, [`${hostile}x`])).rejects.toThrow(/unknown vector index/);
    expect((await database.sql.query('SELECT count(*)::int AS n FROM docs')).rows[0].n).toBe(documents.length);
  });

  it.runIf(testBackendCapabilities().concurrentSessions)('an index a render from an older snapshot left out is searched all the same, and a removed one is unknown', async () => {
    // A REPEATABLE READ transaction takes its snapshot, another session applies
    // late_index meanwhile, then the first applies rr_index: its render of
    // like() cannot see late_index, so late_index has no branch. (Concurrent
    // sessions: the embedded database has one.)
    const early = new pg.Client({ connectionString: database.uri });
    await early.connect();
    try {
      await early.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await early.query('SELECT count(*) FROM superduper._vector_indexes');
      await db.apply(vectorIndex({ name: 'late_index', listener: 'docs_concepts' }));
      await early.query('SELECT superduper.apply($1::jsonb)', [JSON.stringify(vectorIndex({ name: 'rr_index', listener: 'docs_concepts' }).spec)]);
      await early.query('COMMIT');
    } finally {
      await early.end();
    }
    const like = (await database.sql.query<{ body: string }>(`SELECT string_agg(prosrc, ' ') AS body FROM pg_proc WHERE proname = 'like'`)).rows[0]!.body;
    const late = (await database.sql.query<{ id: number }>(`SELECT id FROM superduper._vector_indexes WHERE name = 'late_index'`)).rows[0]!.id;
    expect(like).not.toContain(`_vi${late}_search`);
    for (const index of ['late_index', 'rr_index', 'docs_index']) {
      expect((await byVector(index, 'dog'))[0]).toBe('2');
      expect((await byText(index, 'dog'))[0]).toBe('2');
    }
    await db.remove('rr_index');
    await db.remove('late_index');
    await expect(byVector('rr_index', 'dog')).rejects.toThrow(/unknown vector index 'rr_index'/);
    await expect(byText('late_index', 'dog')).rejects.toThrow(/unknown vector index 'late_index'/);
    expect((await byVector('docs_index', 'dog'))[0]).toBe('2');
  });
});

describe('privileges', () => {
  useSearchDatabase('vector_search_privileges');

  it('a role that cannot read the source table gets none of its rows', async () => {
    // Roles belong to the whole cluster: names of their own, so that roles left by
    // an earlier run that failed (holding grants in its database) are no obstacle.
    const suffix = randomUUID().slice(0, 8);
    const [readerRole, strangerRole] = [`sd_reader_${suffix}`, `sd_stranger_${suffix}`];
    await database.sql.query(`CREATE ROLE ${readerRole} LOGIN; CREATE ROLE ${strangerRole} LOGIN;
      CREATE TABLE notes (id int PRIMARY KEY, body text);
      INSERT INTO notes SELECT g, 'kitten note ' || g FROM generate_series(1, 5) g;
      GRANT SELECT ON notes TO ${readerRole};`);
    // SELECT on the source is copied to the outputs table when it is created.
    await db.apply(
      listener({ name: 'notes_concepts', model: 'concepts', table: 'notes', keys: ['body'] }),
      vectorIndex({ name: 'notes_index', listener: 'notes_concepts' }),
    );
    await db.waitUntilIdle();
    const as = async (role: string) => {
      const url = new URL(database.uri);
      url.username = role;
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      return client;
    };
    const reader = await as(readerRole);
    const stranger = await as(strangerRole);
    try {
      const rows = await reader.query(`SELECT id FROM superduper.like('notes_index', 'kitten', 3)`);
      expect(rows.rows).toHaveLength(3);
      await expect(stranger.query(`SELECT id FROM superduper.like('notes_index', 'kitten', 3)`)).rejects.toThrow(/permission denied for table/);
      await expect(stranger.query(`SELECT * FROM superduper.out_notes_concepts`)).rejects.toThrow(/permission denied/);
      // Model calls touch no table: anyone may make them.
      const embedded = await stranger.query(`SELECT vector_dims(superduper.embed('concepts', 'kitten')) AS d`);
      expect(embedded.rows[0].d).toBe(6);
    } finally {
      await reader.end();
      await stranger.end();
      await database.sql.query(`REVOKE ALL ON notes FROM ${readerRole}; REVOKE ALL ON superduper.out_notes_concepts FROM ${readerRole};
        DROP ROLE ${readerRole}; DROP ROLE ${strangerRole};`);
    }
  });
});

describe('bad input', () => {
  useSearchDatabase('vector_search_bad_input');

  const fails = (query: string, message: RegExp) => expect(database.sql.query(query)).rejects.toThrow(message);

  it('unknown index or model', async () => {
    await fails(`SELECT * FROM superduper.like('nope', 'x')`, /superduper.like: unknown vector index 'nope'/);
    await fails(`SELECT superduper.embed('nope', 'x')`, /superduper.embed: unknown model 'nope'/);
    await fails(`SELECT superduper.predict('nope', '1')`, /superduper.predict: unknown model 'nope'/);
  });
  it('NULL or empty queries', async () => {
    await fails(`SELECT * FROM superduper.like('docs_index', '')`, /index "docs_index": the query is empty/);
    await fails(`SELECT * FROM superduper.like('docs_index', NULL::text)`, /index "docs_index": the query is NULL/);
    await fails(`SELECT superduper.embed('concepts', NULL)`, /model "concepts": the input is NULL/);
  });
  it('k out of range', async () => {
    await fails(`SELECT * FROM superduper.like('docs_index', 'cat', 0)`, /k must be between 1 and 1000, not 0/);
    await fails(`SELECT * FROM superduper.like('docs_index', 'cat', 100000)`, /k must be between 1 and 1000, not 100000/);
  });
  it('a vector of the wrong dimension', async () => {
    await fails(`SELECT * FROM superduper.like('docs_index', '[1,2,3]'::vector)`, /index "docs_index" holds vectors of 6 dimensions; the query has 3/);
  });
  it('a filter on a column that does not exist, or with a bad operator', async () => {
    await fails(`SELECT * FROM superduper.like('docs_index', 'cat', 3, '{"colour": "red"}')`, /the filter names column colour, which table public.docs does not have/);
    await fails(`SELECT * FROM superduper.like('docs_index', 'cat', 3, '{"topic": {"~": "x"}}')`, /unknown operator '~'/);
  });
  it('embed on a model that does not output vectors', async () => {
    await db.apply(topicOf);
    await fails(`SELECT superduper.embed('topic_of', 'x')`, /model "topic_of" outputs jsonb, not vectors/);
  });
  it('a vector index whose query model has another dimension', async () => {
    await db.apply(functionModel({ name: 'three', output: { type: 'vector', dim: 3 }, predict: (x: string[]) => x.map(() => [1, 0, 0]) }));
    await expect(db.apply(vectorIndex({ name: 'bad_index', listener: 'docs_concepts', queryModel: 'three' }))).rejects.toThrow(
      /vector index "bad_index": query model "three" outputs public.vector\(3\), but the vectors of listener "docs_concepts" are public.vector\(6\)/,
    );
  });
  it('a vector index on a listener that does not output vectors', async () => {
    await db.apply(
      functionModel({ name: 'words', output: { type: 'integer' }, predict: (x: string[]) => x.map((t) => t.split(' ').length) }),
      listener({ name: 'docs_words', model: 'words', table: 'docs', keys: ['body'] }),
    );
    await expect(db.apply(vectorIndex({ name: 'bad_index', listener: 'docs_words' }))).rejects.toThrow(
      /listener "docs_words" outputs bigint, not vectors/,
    );
  });
  it('removing a listener a vector index searches needs cascade', async () => {
    await expect(db.remove('docs_concepts')).rejects.toThrow(/listener "docs_concepts" is searched by vector index\(es\) docs_index/);
  });
});
