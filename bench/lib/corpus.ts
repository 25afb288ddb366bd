/**
 * Synthetic documents for benchmarks: deterministic, each different, and
 * clustered like real text embeddings are. Each document is about one of 1,000
 * topics: about 70% of its words come from its topic's 20 words, the rest from
 * ~5,000 common words with a Zipf-like skew. 8 to 24 words a document.
 *
 * (A corpus of a few dozen words makes many embeddings identical, so the "exact
 * top 10" a search is measured against is arbitrary; a corpus of unrelated random
 * words makes embeddings nearly isotropic, which no real text is and on which
 * every approximate index does badly.)
 */
export function documentSql(table: string, rows: number): string {
  return `INSERT INTO ${table} (id, body)
    SELECT g, 'doc ' || g || ' ' || (
      SELECT string_agg(${wordSql('g', 'k')}, ' ')
      FROM generate_series(1, 8 + g % 17) AS k)
    FROM generate_series(1, ${rows}) AS g`;
}

/** A word of document g (its k-th), as an SQL expression. */
function wordSql(g: string, k: string): string {
  const h = (salt: number) => `abs(hashint4(${g} * ${salt} + ${k}))`;
  return `CASE WHEN ${h(7)} % 10 < 7
    THEN 't' || (${g} % 1000) || '_' || (${h(13)} % 20)
    ELSE 'w' || floor(power(${h(31)} / 2147483648.0, 2.5) * 5000)::int END`;
}

/** Query texts shaped like the documents (topic words and common words). */
export function queryTexts(count: number, seed = 1): string[] {
  const texts: string[] = [];
  let state = seed;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 4294967296;
  };
  for (let i = 0; i < count; i++) {
    const topic = Math.floor(next() * 1000);
    const words = Array.from({ length: 6 + Math.floor(next() * 6) }, () =>
      next() < 0.7 ? `t${topic}_${Math.floor(next() * 20)}` : `w${Math.floor(next() ** 2.5 * 5000)}`,
    );
    texts.push(words.join(' '));
  }
  return texts;
}
