/**
 * hybrid()'s full-text half reads the candidates holding two words of the
 * query first, and the others only when those are fewer than it needs
 * (../../../sql/templates/text_search.sql): ts_rank puts every row holding two
 * of an ORed query's words above every row holding one, so the half's rows
 * and order must be exactly those of ranking every candidate. Checked against
 * that reference query, with common words in play (a row holding one uncommon
 * and one common word counts as holding two), with and without a filter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { countingFeatureModel } from '../../helpers/models.js';

const ROWS = 600;
// Rows 0-9: two uncommon words; 10-19: one uncommon and the common word;
// 20-29: the uncommon word five times and the common word (the best of all);
// 30-39: uncommon words alone; the rest the common word ("common", held by
// 580 rows of 600, so common for up to 57 candidates).
const body = (i: number) =>
  i < 10 ? `walrus narwhal ${i}` :
  i < 20 ? `walrus common ${i}` :
  i < 30 ? `walrus walrus walrus walrus walrus common ${i}` :
  i < 40 ? `walrus ${i % 2 ? 'beluga' : ''} ${i}` :
  `common row ${i}`;

let database: TestDatabase;
let db: Superduper;
let words = '';
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

/** The full-text half's hits (ids), best first, of `candidates` candidates. */
const textHits = async (query: string, candidates: number, filter: object | null = null): Promise<number[]> =>
  (
    await q(
      `SELECT key, text_rank FROM superduper.hybrid('pairs_index', $1, $2, $3, p_vector_weight => 0, p_candidates => $2)
       WHERE text_rank IS NOT NULL ORDER BY text_rank`,
      [query, candidates, filter && JSON.stringify(filter)],
    )
  ).map((r) => Number(r.key[0]));

/**
 * Every candidate ranked: what the half gave before it read pairs first. The
 * best by rank, ties broken by the key's columns; then in hybrid()'s order:
 * ties broken by the key as text.
 */
const reference = async (query: string, candidates: number, odd = false): Promise<number[]> =>
  (
    await q(
      `SELECT best.id FROM (
         SELECT o.id, ts_rank(o.${words}, t.rank_query) AS rank
         FROM superduper.out_pair_vectors AS o JOIN "Pair docs" AS d ON d.id = o.id,
              superduper._text_queries((SELECT id FROM superduper._vector_indexes WHERE name = 'pairs_index'),
                                       'superduper.out_pair_vectors'::regclass, 'english', $1, $2) AS t
         WHERE o.${words} @@ t.match_query AND ($3 = false OR d.grp = 'odd')
         ORDER BY 2 DESC, o.id LIMIT $2) AS best
       ORDER BY best.rank DESC, ARRAY[best.id::text]`,
      [query, candidates, odd],
    )
  ).map((r) => Number(r.id));

const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

beforeAll(async () => {
  database = await createTestDatabase('text_pairs');
  db = await connectTest(database);
  await q('CREATE TABLE "Pair docs" (id int PRIMARY KEY, grp text, body text)');
  await q(`INSERT INTO "Pair docs" SELECT i, CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END, ($1::text[])[i + 1] FROM generate_series(0, ${ROWS - 1}) AS i`, [
    Array.from({ length: ROWS }, (_, i) => body(i)),
  ]);
  await db.apply(
    countingFeatureModel('features'),
    listener({ name: 'pair_vectors', model: 'features', table: 'Pair docs', keys: ['body'] }),
    vectorIndex({ name: 'pairs_index', listener: 'pair_vectors', fullText: 'english' }),
  );
  await q('ALTER TABLE superduper.out_pair_vectors SET (autovacuum_enabled = false)');
  await db.start({ reconcileMs: 100 });
  await db.waitFor('pair_vectors', { timeoutMs: 60_000 });
  words = (await q(`SELECT '_words_vi' || id AS w FROM superduper._vector_indexes WHERE name = 'pairs_index'`))[0].w;
  await q('ANALYZE superduper.out_pair_vectors');
  // What the sidecar's next reconcile reads (reconcileMs 100): wait for it.
  await eventually(
    async () => (await q(`SELECT count(*)::int AS n FROM superduper._text_common_words WHERE lexeme = 'common'`))[0].n === 1,
    10_000,
    'the sidecar to read the new statistics',
  );
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

describe('the full-text half reads the rows holding two words first', () => {
  it('pairs every two words but two common ones, and reads fewer rows than it has candidates', async () => {
    const [t] = await q(
      `SELECT t.match_query::text AS match, t.pair_query::text AS pairs,
              (SELECT count(*)::int FROM superduper.out_pair_vectors AS o WHERE o.${words} @@ t.match_query) AS candidates,
              (SELECT count(*)::int FROM superduper.out_pair_vectors AS o WHERE o.${words} @@ t.pair_query) AS paired
       FROM superduper._text_queries((SELECT id FROM superduper._vector_indexes WHERE name = 'pairs_index'),
                                     'superduper.out_pair_vectors'::regclass, 'english', 'walrus narwhal common', 10) AS t`,
    );
    expect(t).toEqual({ match: `'narwhal' | 'walrus'`, pairs: `'common' & 'narwhal' | 'common' & 'walrus' | 'narwhal' & 'walrus'`, candidates: 40, paired: 30 });
  });

  it('gives exactly the rows and order of ranking every candidate', async () => {
    // Where reading the rows with two uncommon words (0-9) first would be
    // wrong: a row with an uncommon word five times and a common one ranks higher.
    expect((await reference('walrus narwhal common', 10)).sort((a, b) => a - b)).toEqual(ids(20, 30));
    for (const query of ['walrus narwhal common', 'walrus narwhal', 'walrus common', 'walrus', 'beluga walrus', 'narwhal beluga common row']) {
      for (const candidates of [1, 5, 10, 25, 40, 50]) {
        expect(await textHits(query, candidates), `${query}, ${candidates} candidates`).toEqual(await reference(query, candidates));
        expect(await textHits(query, candidates, { grp: 'odd' }), `${query}, ${candidates} candidates, odd rows`).toEqual(
          await reference(query, candidates, true),
        );
      }
    }
  });

  it('still needs every word of a query of common words only', async () => {
    expect(await textHits('common row', 10)).toEqual(await reference('common row', 10));
    expect((await textHits('common row', 50)).every((id) => id >= 40)).toBe(true);
  });
});
