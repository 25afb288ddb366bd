/**
 * hybrid()'s full-text half and common words (sql/functions/072_text_common_words.sql):
 * once the words' table has been analyzed, a row that shares only common words
 * with the query (held by more than 1% of the rows and more than ten times the
 * candidates) is not a candidate; a query of common words only needs them all;
 * and a new ANALYZE is read again. Autovacuum is off on the outputs table, so
 * that the test says when the statistics change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { countingFeatureModel } from '../../helpers/models.js';

const ROWS = 600;
// Every row holds "common"; rows below 450 "frequent" too; five rows "walrus".
const body = (i: number) => `common${i < 450 ? ' frequent' : ''}${i < 5 ? ' walrus' : ''} row${i}`;

let database: TestDatabase;
let db: Superduper;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

/** The full-text half's hits (as ids), best first, of `candidates` candidates (so at most as many rows hold a word counted common). */
const textHits = async (query: string, candidates = 40, filter: object | null = null): Promise<number[]> =>
  (
    await q(
      `SELECT key, text_rank FROM superduper.hybrid('words_index', $1, $2, $3, p_vector_weight => 0, p_candidates => $2)
       WHERE text_rank IS NOT NULL ORDER BY text_rank`,
      [query, candidates, filter && JSON.stringify(filter)],
    )
  ).map((r) => Number(r.key[0]));

const analyzed = async () => {
  await q('ANALYZE superduper.out_word_vectors');
  // What the sidecar's next reconcile reads (reconcileMs 100): wait for it.
  await eventually(
    async () =>
      (await q(`SELECT count(*)::int AS n FROM superduper._text_word_stats WHERE analyzed_at >= now() - interval '1 hour'
                AND analyzed_at = (SELECT greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid))
                                   FROM pg_class c WHERE c.oid = 'superduper.out_word_vectors'::regclass)`))[0].n === 1,
    10_000,
    'the sidecar to read the new statistics',
  );
};

beforeAll(async () => {
  database = await createTestDatabase('common_words');
  db = await connectTest(database);
  await q('CREATE TABLE docs (id int PRIMARY KEY, grp text, body text)');
  await q(`INSERT INTO docs SELECT i, CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END, ($1::text[])[i + 1] FROM generate_series(0, ${ROWS - 1}) AS i`, [
    Array.from({ length: ROWS }, (_, i) => body(i)),
  ]);
  await db.apply(
    countingFeatureModel('features'),
    listener({ name: 'word_vectors', model: 'features', table: 'docs', keys: ['body'] }),
    vectorIndex({ name: 'words_index', listener: 'word_vectors', fullText: 'english' }),
  );
  await q('ALTER TABLE superduper.out_word_vectors SET (autovacuum_enabled = false)');
  await db.start({ reconcileMs: 100 });
  await db.waitFor('word_vectors', { timeoutMs: 60_000 });
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

describe('common words in the full-text half', () => {
  it('ranks every row holding any word of the query until the table is analyzed', async () => {
    const hits = await textHits('walrus common');
    expect(hits).toHaveLength(40); // as many as the candidates
    expect(hits.slice(0, 5).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
  });

  it('then leaves out rows that share only a common word with the query', async () => {
    await analyzed();
    expect(await q(`SELECT total_rows FROM superduper._text_word_stats`)).toEqual([{ total_rows: ROWS }]);
    const common = Object.fromEntries((await q(`SELECT lexeme, rows FROM superduper._text_common_words`)).map((r) => [r.lexeme, r.rows]));
    expect(common.common).toBeGreaterThan(400);
    expect(common.frequent).toBeGreaterThan(400);
    expect(common.walrus).toBeUndefined(); // held by 5 rows of 600: under 1%, not kept
    const hits = await textHits('walrus common');
    expect(hits.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
    // The common word still ranks: a row with both words beats one with "walrus" alone.
    await q(`UPDATE docs SET body = 'walrus row3' WHERE id = 3`);
    await db.waitFor('word_vectors', { timeoutMs: 30_000 });
    const ranked = await textHits('walrus common');
    expect(ranked).toHaveLength(5);
    expect(ranked[4]).toBe(3);
  });

  it('needs every word when all of them are common', async () => {
    const hits = await textHits('common frequent');
    expect(hits).toHaveLength(40);
    expect(hits.every((id) => id < 450)).toBe(true);
  });

  it('counts a word as common only above ten times the candidates asked for', async () => {
    // 1,000 candidates: "common" (about 600 rows) is not common for them.
    const hits = await textHits('walrus common', 1000);
    expect(hits.length).toBeGreaterThan(500);
  });

  it('applies to the filtered form too', async () => {
    const hits = await textHits('walrus common', 40, { grp: 'even' });
    expect(hits.sort((a, b) => a - b)).toEqual([0, 2, 4]);
  });

  it('reads the statistics again after the next ANALYZE', async () => {
    // "common" leaves all but 300 rows: no longer common after the next ANALYZE.
    await q(`UPDATE docs SET body = replace(body, 'common', 'plain') WHERE id >= 300`);
    await db.waitFor('word_vectors', { timeoutMs: 60_000 });
    expect(await textHits('walrus common')).toHaveLength(5); // the old statistics still hold
    await analyzed();
    expect(await textHits('walrus common')).toHaveLength(40);
  });
});
