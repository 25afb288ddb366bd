/**
 * Synthetic documents for benchmarks: deterministic, varied in length and words,
 * so tokenization and the model do real work per row.
 */
const words = (
  'database vector search model output listener trigger queue sidecar index table row column query ' +
  'embedding cosine distance postgres replica backup latency throughput memory batch commit lock ' +
  'password reset account billing invoice shipping order customer support refund delivery product'
).split(' ');

export function documentSql(table: string, rows: number): string {
  return `INSERT INTO ${table} (id, body)
    SELECT g, 'doc ' || g || ' ' || array_to_string(ARRAY(
      SELECT (ARRAY[${words.map((w) => `'${w}'`).join(',')}])[1 + ((g * 7 + k * 13) % ${words.length})]
      FROM generate_series(1, 8 + g % 17) AS k), ' ')
    FROM generate_series(1, ${rows}) AS g`;
}
