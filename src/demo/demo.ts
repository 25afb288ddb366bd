import { demoJoinSql, demoSearchSql, loadDemoCorpus } from '../backends/postgres/demo.js';
import type { Superduper } from '../client.js';
import { listener } from '../components/listener.js';
import { vectorIndex } from '../components/vector-index.js';
import { showProgress, summaryLines } from '../cli/progress.js';
import { excerpt, quoteLiteral } from './text.js';
import { documentationPassages, type Passage } from './passages.js';
import { runRagStep } from './rag-step.js';

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
  rag: { chunks: number; answer: string; passages: string[][] };
}

type Write = (text: string) => void;

/**
 * The whole product on one database: a table of real documents, a listener
 * with the default embedder keeping their vectors current, a vector index,
 * semantic searches from SQL, the outputs joined to their rows, then chunks,
 * hybrid search and an answer from superduper.rag() (rag-step.ts). Idempotent:
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
    const started = Date.now();
    const outcomes = await showProgress(db, [DEMO_LISTENER]);
    write(`${summaryLines(outcomes, (Date.now() - started) / 1000).join('\n')}\n`);
  }

  const searches: DemoReport['searches'] = [];
  for (const query of DEMO_QUERIES) {
    const sql = demoSearchSql(DEMO_INDEX, DEMO_TABLE);
    const result = await db.db.query<{ id: string; score: string; heading: string; body: string }>(sql, [query]);
    write(`\n${sql.replace('$1', quoteLiteral(query))};\n`);
    for (const row of result.rows) write(`  ${row.score}  [${row.heading}] ${excerpt(row.body, 90)}\n`);
    searches.push({ query, hits: result.rows.map((row) => ({ id: row.id, score: Number(row.score), heading: row.heading })) });
  }

  const joinSql = demoJoinSql(DEMO_TABLE, DEMO_LISTENER);
  write(`\nThe listener's outputs are an ordinary table, joined to the source on its primary key:\n${joinSql};\n`);
  const joined = await db.db.query<{ id: number; heading: string; dims: number; computed_at: string }>(joinSql);
  for (const row of joined.rows) write(`  ${row.id}  ${excerpt(row.heading, 50).padEnd(50)}  vector(${row.dims})  ${row.computed_at}\n`);

  const rag = await runRagStep(db, DEMO_TABLE, write);
  return { passages, computed: toCompute, searches, rag };
}

/** Creates the documents table and fills it on the first run; returns its row count. */
function loadCorpus(db: Superduper, passages: Passage[]): Promise<number> {
  return loadDemoCorpus(
    db.db,
    DEMO_TABLE,
    passages.map((p, i) => ({ id: i + 1, file: p.file, heading: p.heading, body: p.body })),
  );
}
