import type { Superduper } from '../client.js';
import { listener } from '../components/listener.js';
import { vectorIndex } from '../components/vector-index.js';
import { showProgress } from '../cli/progress.js';
import { documentationPassages, type Passage } from './passages.js';

export const DEMO_TABLE = 'docs';
export const DEMO_LISTENER = 'docs_embedding';
export const DEMO_INDEX = 'docs_index';

/** The questions the demo asks of the documentation. */
export const DEMO_QUERIES = [
  'how do I put the SQL layer into my own database?',
  'what happens to a row when the model keeps failing?',
  'which text embedder works without downloading anything?',
];

export interface DemoReport {
  passages: number;
  /** Rows whose outputs were computed in this run (0 when a second run finds them done). */
  computed: number;
  searches: Array<{ query: string; hits: Array<{ id: string; score: number; heading: string }> }>;
}

type Write = (text: string) => void;

/**
 * The whole product on one database: a table of real documents, a listener
 * with the default embedder keeping their vectors current, a vector index,
 * semantic searches from SQL, and the outputs joined to their rows. Idempotent:
 * a second run finds the table and the outputs there and only searches.
 */
export async function runDemo(db: Superduper, write: Write): Promise<DemoReport> {
  const passages = await loadCorpus(db, documentationPassages());
  write(`table ${DEMO_TABLE}: ${passages} passages of superduper's own documentation (README.md, docs/*.md)\n`);

  const applied = await db.apply(
    listener({ name: DEMO_LISTENER, table: DEMO_TABLE, keys: ['body'] }),
    vectorIndex({ name: DEMO_INDEX, listener: DEMO_LISTENER }),
  );
  const backfill = applied.find((result) => result.name === DEMO_LISTENER)?.backfill ?? 0;
  write(`listener ${DEMO_LISTENER} (default embedder on ${DEMO_TABLE}.body) and vector index ${DEMO_INDEX}: ${applied.map((r) => r.action).join(', ')}\n`);

  const [before] = await db.status();
  const toCompute = (before?.pending ?? 0) + (before?.in_flight ?? 0);
  if (toCompute > 0) {
    write(`computing ${toCompute} embeddings (a sidecar in this process)\n`);
    await showProgress(db, [DEMO_LISTENER]);
  }

  const searches: DemoReport['searches'] = [];
  for (const query of DEMO_QUERIES) {
    const sql = `SELECT l.id, round(l.score::numeric, 3) AS score, d.heading, d.body
FROM superduper.like('${DEMO_INDEX}', $1, 3) AS l
JOIN ${DEMO_TABLE} d ON d.id = l.id::int
ORDER BY l.score DESC`;
    const result = await db.db.query<{ id: string; score: string; heading: string; body: string }>(sql, [query]);
    write(`\n${sql.replace('$1', quoteLiteral(query))};\n`);
    for (const row of result.rows) write(`  ${row.score}  [${row.heading}] ${excerpt(row.body, 90)}\n`);
    searches.push({ query, hits: result.rows.map((row) => ({ id: row.id, score: Number(row.score), heading: row.heading })) });
  }

  const joinSql = `SELECT d.id, d.heading, vector_dims(o.output) AS dims, o._computed_at::time(0) AS computed_at
FROM ${DEMO_TABLE} d JOIN superduper.out_${DEMO_LISTENER} o USING (id)
ORDER BY d.id LIMIT 3`;
  write(`\nThe listener's outputs are an ordinary table, joined to the source on its primary key:\n${joinSql};\n`);
  const joined = await db.db.query<{ id: number; heading: string; dims: number; computed_at: string }>(joinSql);
  for (const row of joined.rows) write(`  ${row.id}  ${excerpt(row.heading, 50).padEnd(50)}  vector(${row.dims})  ${row.computed_at}\n`);

  return { passages, computed: toCompute, searches };
}

/** Creates the documents table and fills it on the first run; returns its row count. */
async function loadCorpus(db: Superduper, passages: Passage[]): Promise<number> {
  return db.db.transaction(async (tx) => {
    await tx.query(`CREATE TABLE IF NOT EXISTS ${DEMO_TABLE} (id integer PRIMARY KEY, file text NOT NULL, heading text NOT NULL, body text NOT NULL)`);
    const existing = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${DEMO_TABLE}`);
    if ((existing.rows[0]?.n ?? 0) > 0) return existing.rows[0]!.n;
    // One statement for all rows: the passages travel as one JSON parameter.
    const rows = passages.map((p, i) => ({ id: i + 1, file: p.file, heading: p.heading, body: p.body }));
    await tx.query(
      `INSERT INTO ${DEMO_TABLE} (id, file, heading, body)
       SELECT id, file, heading, body FROM jsonb_to_recordset($1::jsonb) AS r(id integer, file text, heading text, body text)`,
      [JSON.stringify(rows)],
    );
    return rows.length;
  });
}

function excerpt(text: string, length: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length <= length ? flat : `${flat.slice(0, length - 1)}…`;
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
