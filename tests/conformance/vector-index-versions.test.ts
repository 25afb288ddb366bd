/**
 * A vector index's breaking change (another measure, graph shape or listener)
 * builds a new version beside the current one, which keeps answering searches
 * until the new one is built and swapped in (sql/functions/071_vector_index_builds.sql).
 * Names are hostile throughout: quotes, spaces, upper case, a semicolon.
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import { conceptModel, conceptVector } from '../helpers/concepts.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';
import { testBackendCapabilities } from '../helpers/backends.js';

const backend = testBackendCapabilities();
let database: TestDatabase;
let db: Superduper;
const q = <Row = Record<string, unknown>>(text: string, params: unknown[] = []) =>
  database.sql.query(text, params).then((r) => r.rows as Row[]);

const LISTENER = `Doc "Vecs"; x`;
const INDEX = `Doc "Index"; 1`;
const words = ['cat kitten', 'dog puppy bark', 'car engine drive', 'stock market', 'password login', 'pizza pasta'];

const index = (options: { measure?: 'cosine' | 'l2' | 'ip'; m?: number; ef_search?: number } = {}) =>
  vectorIndex({
    name: INDEX,
    listener: LISTENER,
    ...(options.measure ? { measure: options.measure } : {}),
    ...(options.m || options.ef_search ? { index: { ...(options.m ? { m: options.m } : {}), ...(options.ef_search ? { ef_search: options.ef_search } : {}) } } : {}),
  });

const versions = () => q(`SELECT version, state, measure, m FROM superduper.vector_indexes WHERE name = $1 ORDER BY version`, [INDEX]);
/** The HNSW indexes on the listener's outputs, with whether each is valid. */
const hnsw = () =>
  q<{ name: string; valid: boolean; def: string }>(
    `SELECT c.relname AS name, i.indisvalid AS valid, pg_get_indexdef(i.indexrelid) AS def
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
     WHERE i.indrelid = (SELECT outputs::regclass FROM superduper.listeners WHERE name = $1 AND state = 'current') AND a.amname = 'hnsw'
     ORDER BY c.relname`,
    [LISTENER],
  );
/** Searched by the query's vector: no sidecar needed to embed it. */
const vector = (text: string) => `[${conceptVector(text).join(',')}]`;
const like = (query: string, k = 3) =>
  q<{ id: string; score: number }>(`SELECT id, score FROM superduper.like($1, $2::vector, $3)`, [INDEX, vector(query), k]);

beforeEach(async () => {
  database = await createTestDatabase('vector_index_versions');
  db = await connectTest(database);
  await q(`CREATE TABLE "My Docs" (id int PRIMARY KEY, body text NOT NULL)`);
  await q(`INSERT INTO "My Docs" SELECT g, ($1::text[])[1 + g % 6] || ' ' || g FROM generate_series(1, 60) g`, [words]);
  await db.apply(conceptModel(), listener({ name: LISTENER, model: 'concepts', table: 'My Docs', keys: ['body'] }), index());
  // The outputs computed, then no sidecar: nothing builds until a test starts one.
  const sidecar = await db.start({ reconcileMs: 100 });
  await db.waitUntilIdle();
  await sidecar.stop();
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

describe('a vector index rebuilt', () => {
  it('keeps answering from the current version until the new one is built, then swaps it in', async () => {
    const before = await like('kitten cat');
    expect(before).toHaveLength(3);
    const [result] = await db.apply(index({ measure: 'l2' }));
    expect(result).toMatchObject({ type: 'vector_index', action: 'rebuilding', version: 2 });
    expect(await versions()).toEqual([
      { version: 1, state: 'current', measure: 'cosine', m: 16 },
      { version: 2, state: 'building', measure: 'l2', m: 16 },
    ]);
    // Nothing built yet: the cosine graph answers, with the same rows and scores.
    expect((await hnsw()).map((i) => i.def)).toEqual([expect.stringMatching(/vector_cosine_ops/)]);
    expect(await like('kitten cat')).toEqual(before);

    await db.start({ reconcileMs: 100 });
    await eventually(async () => (await versions()).length === 1, 20_000, 'the swap');
    expect(await versions()).toEqual([{ version: 2, state: 'current', measure: 'l2', m: 16 }]);
    await eventually(async () => (await hnsw()).length === 1, 20_000, 'the old graph dropped');
    expect(await hnsw()).toEqual([{ name: expect.any(String), valid: true, def: expect.stringMatching(/vector_l2_ops/) }]);
    // Unit vectors: the same neighbours (the ten "cat kitten" rows, tied, so any three of
    // them), now scored by minus their L2 distance, sqrt(2 - 2 cos).
    const after = await like('kitten cat');
    for (const hits of [before, after]) expect(hits.every((hit) => Number(hit.id) % 6 === 0)).toBe(true);
    after.forEach((hit, i) => expect(hit.score).toBeCloseTo(-Math.sqrt(Math.max(0, 2 - 2 * before[i]!.score)), 5));
  });

  it('re-applying the spec being built changes nothing; re-applying the current one drops the build', async () => {
    await db.apply(index({ m: 8 }));
    expect(await db.apply(index({ m: 8 }))).toEqual([expect.objectContaining({ action: 'unchanged', version: 2, building: true })]);
    expect(await db.apply(index())).toEqual([expect.objectContaining({ action: 'unchanged', version: 1 })]);
    expect(await versions()).toEqual([{ version: 1, state: 'current', measure: 'cosine', m: 16 }]);
    // A query-time setting on top of a build: the build goes, the current one is updated in place.
    await db.apply(index({ m: 8 }));
    expect(await db.apply(index({ ef_search: 40 }))).toEqual([expect.objectContaining({ action: 'updated', version: 1 })]);
    expect(await q(`SELECT version, state, ef_search FROM superduper.vector_indexes WHERE name = $1`, [INDEX])).toEqual([
      { version: 1, state: 'current', ef_search: 40 },
    ]);
    expect(await q(`SELECT count(*)::int AS n FROM pg_class WHERE relname ~ '^_vi[0-9]+_hnsw_l' AND relnamespace = 'superduper'::regnamespace`)).toEqual([
      { n: 1 },
    ]);
  });

  it('builds again an index a failed build left invalid', async () => {
    await db.apply(index({ measure: 'ip' }));
    const [build] = await q<{ id: number; lid: number; outputs: string }>(
      `SELECT v.id, l.id AS lid, l.output_table AS outputs FROM superduper._vector_indexes v JOIN superduper._listeners l ON l.name = v.listener
       WHERE v.name = $1 AND v.state = 'building'`,
      [INDEX],
    );
    // A concurrent build that fails leaves its index behind, invalid: made here by a unique index over duplicates.
    await expect(
      q(`CREATE UNIQUE INDEX CONCURRENTLY ${pg.escapeIdentifier(`_vi${build!.id}_hnsw_l${build!.lid}`)} ON superduper.${pg.escapeIdentifier(build!.outputs)} ((1))`),
    ).rejects.toThrow(/could not create unique index/);
    expect((await hnsw()).length).toBe(1);
    expect(await q(`SELECT indisvalid FROM pg_index WHERE indexrelid = $1::regclass`, [`superduper.${pg.escapeIdentifier(`_vi${build!.id}_hnsw_l${build!.lid}`)}`])).toEqual([
      { indisvalid: false },
    ]);

    await db.start({ reconcileMs: 100 });
    await eventually(async () => (await versions()).length === 1, 20_000, 'the swap');
    await eventually(async () => (await hnsw()).length === 1, 20_000, 'the old graph dropped');
    expect(await hnsw()).toEqual([{ name: `_vi${build!.id}_hnsw_l${build!.lid}`, valid: true, def: expect.stringMatching(/USING hnsw \(output vector_ip_ops\)/) }]);
  });

  it.runIf(backend.concurrentSessions)('a build waits for a long transaction while searches and writes go on, and swaps once it ends', async () => {
    const reader = new pg.Client({ connectionString: database.uri });
    await reader.connect();
    try {
      await reader.query('BEGIN');
      await reader.query(`SELECT count(*) FROM superduper.like($1, $2::vector, 5)`, [INDEX, vector('dog')]);
      await db.apply(index({ measure: 'l2' }));
      await db.start({ reconcileMs: 100 });
      // CREATE INDEX CONCURRENTLY waits for transactions older than its build (PostgreSQL's rule)...
      await eventually(
        async () =>
          (
            await q(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event = 'virtualxid'`)
          ).length === 1,
        20_000,
        'the build waiting for the reader',
      );
      // ...and blocks nothing meanwhile: searches answer from the current graph, new rows get outputs.
      expect((await versions()).map((v) => v.state)).toEqual(['current', 'building']);
      expect(await like('dog puppy')).toHaveLength(3);
      await q(`INSERT INTO "My Docs" VALUES (1000, 'puppy dog bark bark')`);
      await db.waitFor(LISTENER);
      expect((await like('puppy dog bark bark', 1))[0]!.id).toBe('1000');
      const inside = await reader.query(`SELECT count(*)::int AS n FROM superduper.like($1, $2::vector, 5)`, [INDEX, vector('dog')]);
      expect(inside.rows).toEqual([{ n: 5 }]);
      await reader.query('COMMIT');
      await eventually(async () => (await versions()).length === 1, 20_000, 'the swap after the reader ended');
      await eventually(async () => (await hnsw()).length === 1, 20_000, 'the old graph dropped');
      expect((await hnsw())[0]!.def).toMatch(/vector_l2_ops/);
      expect((await like('puppy dog bark bark', 1))[0]!.id).toBe('1000');
    } finally {
      await reader.end();
    }
  });

  it.runIf(backend.concurrentSessions)('a build no longer wanted is let go at once, even while its CREATE INDEX CONCURRENTLY runs', async () => {
    const reader = new pg.Client({ connectionString: database.uri });
    await reader.connect();
    try {
      await reader.query('BEGIN');
      await reader.query(`SELECT count(*) FROM superduper.like($1, $2::vector, 5)`, [INDEX, vector('dog')]);
      await db.apply(index({ measure: 'ip' }));
      await db.start({ reconcileMs: 100 });
      const building = () =>
        q(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event = 'virtualxid'`);
      await eventually(async () => (await building()).length === 1, 20_000, 'the build under way');
      // Back to the current spec: the apply neither drops the index being built nor waits for it.
      expect(await db.apply(index())).toEqual([expect.objectContaining({ action: 'unchanged', version: 1 })]);
      expect(await versions()).toEqual([{ version: 1, state: 'current', measure: 'cosine', m: 16 }]);
      expect(await like('dog puppy')).toHaveLength(3);
      await reader.query('COMMIT');
      // The build finishes into an index nothing registers, which the sidecar then drops concurrently.
      await eventually(async () => (await building()).length === 0 && (await hnsw()).length === 1, 20_000, 'the unwanted graph dropped');
      expect((await hnsw())[0]!.def).toMatch(/vector_cosine_ops/);
    } finally {
      await reader.end();
    }
  });

  it('rebuilds a full-text index with its words, and drops the old words after the swap', async () => {
    const fullText = (m: number) => vectorIndex({ name: INDEX, listener: LISTENER, fullText: 'english', index: { m } });
    await db.apply(fullText(16));
    const outputs = await db.outputsTable(LISTENER);
    const words = () =>
      q<{ attname: string }>(`SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attname LIKE '\_words\_vi%' AND NOT attisdropped ORDER BY 1`, [
        outputs,
      ]).then((rows) => rows.map((r) => r.attname));
    const [before] = await words();
    expect(before).toMatch(/^_words_vi\d+$/);
    await db.start({ reconcileMs: 100 });
    const hybrid = () => q<{ id: string }>(`SELECT id FROM superduper.hybrid($1, 'kitten', 3)`, [INDEX]);
    const found = await hybrid();
    expect(found).toHaveLength(3);

    expect(await db.apply(fullText(8))).toEqual([expect.objectContaining({ action: 'rebuilding', version: 2 })]);
    await eventually(async () => (await versions()).length === 1, 20_000, 'the swap');
    await eventually(async () => (await words()).length === 1 && (await words())[0] !== before, 20_000, 'the old words dropped');
    const [build] = await q<{ id: number }>(`SELECT id FROM superduper._vector_indexes WHERE name = $1`, [INDEX]);
    expect(await words()).toEqual([`_words_vi${build!.id}`]);
    expect(await q(`SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = 'superduper' AND indexname ~ '^_vi[0-9]+_(fts|hnsw)_l' AND indexname !~ $1`, [`^_vi${build!.id}_`])).toEqual([{ n: 0 }]);
    expect(await hybrid()).toEqual(found);
  });

  it('removing the listener removes every version of its vector index', async () => {
    await db.apply(index({ measure: 'l2' }));
    const removed = await db.remove(LISTENER, { cascade: true });
    expect(removed.filter((r) => r.type === 'vector_index')).toEqual([{ type: 'vector_index', name: INDEX, action: 'removed' }]);
    expect(await q(`SELECT count(*)::int AS n FROM superduper._vector_indexes`)).toEqual([{ n: 0 }]);
  });

  it('plans a rebuild with the vectors it would index, as not destructive, and leaves nothing', async () => {
    const [plan] = await db.plan(index({ measure: 'l2' }));
    expect(plan).toMatchObject({ action: 'rebuilding', version: 2, rows: 60, destructive: false });
    expect(await versions()).toEqual([{ version: 1, state: 'current', measure: 'cosine', m: 16 }]);
    expect((await hnsw()).length).toBe(1);
  });
});
