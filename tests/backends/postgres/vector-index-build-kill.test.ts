/**
 * A sidecar killed (kill -9) while it builds a vector index's new version
 * (sql/functions/071_vector_index_builds.sql): its CREATE INDEX CONCURRENTLY
 * goes on in its orphaned server session, still holding the build's lock, so
 * no other sidecar builds the same graph at the same time; once it ends,
 * another sidecar swaps the version in. Nothing is lost or built twice.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { LOCKS } from '../../../src/generated/constants.js';
import { conceptModel, conceptVector } from '../../helpers/concepts.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { startSidecarProcess } from '../../helpers/processes.js';

let database: TestDatabase;
let db: Superduper;
const q = <Row = Record<string, unknown>>(text: string, params: unknown[] = []) =>
  database.sql.query(text, params).then((r) => r.rows as Row[]);
const vector = (text: string) => `[${conceptVector(text).join(',')}]`;
const versions = () => q<{ version: number; state: string; measure: string }>(
  `SELECT version, state, measure FROM superduper.vector_indexes WHERE name = 'docs_index' ORDER BY version`,
);
const waitingBuild = () =>
  q(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event = 'virtualxid'`);
const buildLocks = () => q(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted`, [LOCKS.build_namespace]);

beforeAll(async () => {
  database = await createTestDatabase('vector_index_build_kill');
  db = await connectTest(database);
  await q(`CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL)`);
  await q(`INSERT INTO docs SELECT g, (ARRAY['cat kitten', 'dog bark', 'car engine'])[1 + g % 3] || ' ' || g FROM generate_series(1, 300) g`);
  await db.apply(conceptModel(), listener({ name: 'docs_concepts', model: 'concepts', table: 'docs', keys: ['body'] }), vectorIndex({ name: 'docs_index', listener: 'docs_concepts' }));
  const sidecar = await db.start({ reconcileMs: 100 });
  await db.waitUntilIdle();
  await sidecar.stop();
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

describe('a sidecar killed while it builds a vector index', () => {
  it('leaves the build to its orphaned session, which keeps others off it, and the next sidecar swaps it in', async () => {
    // A long transaction keeps the build waiting, so that the kill lands mid-build.
    const reader = new pg.Client({ connectionString: database.uri });
    await reader.connect();
    try {
      await reader.query('BEGIN');
      await reader.query(`SELECT count(*) FROM superduper.like('docs_index', $1::vector, 5)`, [vector('cat')]);
      await db.apply(vectorIndex({ name: 'docs_index', listener: 'docs_concepts', measure: 'l2' }));

      const doomed = await startSidecarProcess(database.uri);
      await eventually(async () => (await waitingBuild()).length === 1, 20_000, 'the build under way');
      doomed.child.kill('SIGKILL');
      await doomed.exited;

      // Another sidecar finds the build's lock held (by the orphaned session) and leaves it.
      await db.start({ reconcileMs: 100 });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect((await buildLocks()).length).toBe(1);
      expect((await waitingBuild()).length).toBe(1);
      expect((await versions()).map((v) => v.state)).toEqual(['current', 'building']);
      expect(await q(`SELECT count(*)::int AS n FROM superduper.like('docs_index', $1::vector, 5)`, [vector('dog')])).toEqual([{ n: 5 }]);

      await reader.query('COMMIT');
      await eventually(async () => (await versions()).length === 1, 30_000, 'the swap');
      expect(await versions()).toEqual([{ version: 2, state: 'current', measure: 'l2' }]);
      await eventually(
        async () => (await q(`SELECT 1 FROM pg_indexes WHERE schemaname = 'superduper' AND indexdef LIKE '%hnsw%'`)).length === 1,
        30_000,
        'the old graph dropped',
      );
      expect(await q(`SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname ~ '^_vi[0-9]+_hnsw_l'`)).toEqual([
        { valid: true },
      ]);
      const hits = await q<{ id: string; score: number }>(`SELECT id, score FROM superduper.like('docs_index', $1::vector, 3)`, [vector('dog bark')]);
      expect(hits).toHaveLength(3);
      for (const hit of hits) expect(hit.score).toBeLessThanOrEqual(0); // minus an L2 distance
    } finally {
      await reader.end().catch(() => {});
    }
  });
});
