import type { SqlDriver } from './sql-driver.js';

/**
 * The demo's SQL (src/demo/): the statements it runs and prints, as a user
 * would type them in psql. Here because every SQL statement the TypeScript side
 * runs lives in this folder.
 */

/** The search the demo shows: superduper.like() joined to the documents. */
export function demoSearchSql(index: string, table: string): string {
  return `SELECT l.id, round(l.score::numeric, 3) AS score, d.heading, d.body
FROM superduper.like('${index}', $1, 3) AS l
JOIN ${table} d ON d.id = l.id::int
ORDER BY l.score DESC`;
}

/** The outputs table joined to its source on the primary key. */
export function demoJoinSql(table: string, listener: string): string {
  return `SELECT d.id, d.heading, vector_dims(o.output) AS dims, o._computed_at::time(0) AS computed_at
FROM ${table} d JOIN superduper.out_${listener} o USING (id)
ORDER BY d.id LIMIT 3`;
}

/** Creates the documents table and fills it on the first run; returns its row count. */
export function loadDemoCorpus(db: SqlDriver, table: string, rows: ReadonlyArray<{ id: number; file: string; heading: string; body: string }>): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.query(`CREATE TABLE IF NOT EXISTS ${table} (id integer PRIMARY KEY, file text NOT NULL, heading text NOT NULL, body text NOT NULL)`);
    const existing = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    if ((existing.rows[0]?.n ?? 0) > 0) return existing.rows[0]!.n;
    // One statement for all rows: the passages travel as one JSON parameter.
    await tx.query(
      `INSERT INTO ${table} (id, file, heading, body)
       SELECT id, file, heading, body FROM jsonb_to_recordset($1::jsonb) AS r(id integer, file text, heading text, body text)`,
      [JSON.stringify(rows)],
    );
    return rows.length;
  });
}

/** The demo's chunk-level hybrid search: each hit's chunk, from the chunks table. */
export function demoHybridSql(index: string, chunksListener: string): string {
  return `SELECT h.key[1] AS id, h.key[2] AS chunk, round(h.score::numeric, 4) AS score, h.vector_rank, h.text_rank, c.output AS text
FROM superduper.hybrid('${index}', $1, 3) AS h
JOIN superduper.out_${chunksListener} c ON c.id = h.key[1]::int AND c._position = h.key[2]::int
ORDER BY h.score DESC`;
}

/** The demo's question answered from SQL. */
export function demoRagSql(index: string, llm: string): string {
  return `SELECT answer, jsonb_path_query_array(sources, '$[*].key') AS passages
FROM superduper.rag('${index}', $1, '${llm}', 3)`;
}
