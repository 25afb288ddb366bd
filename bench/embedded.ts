/**
 * The embedded database (issue 5): how long the demo takes, and what psql sees
 * when it talks to `superduper serve`.
 *   - demo, first run (a fresh folder: initdb, install, ~300 passages embedded by
 *     the default embedder) and second run (the folder kept), each the real CLI
 *     in a child process; the baseline is the default embedder's runtime alone
 *     over the same passages in batches of 64 (the listener's batch size), in
 *     this process;
 *   - through the wire endpoint: superduper.like() missing and hitting the
 *     embedding cache, against the same top-10 written by hand with the vector
 *     as a literal; and from an INSERT's reply to its output being readable
 *     (polled every 10 ms), one row every 200 ms;
 *   - opening a fresh folder (PGlite's initdb) and an existing one.
 *
 *   make bench ONLY=embedded
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { EmbeddedDatabase } from '../src/backends/pglite/driver.js';
import { documentationPassages } from '../src/demo/passages.js';
import { TextEmbedderRuntime } from '../src/models/text-embedder-runtime.js';
import { percentile, round, sleep } from './lib/setup.js';

export interface EmbeddedResult {
  passages: number;
  demoFirstRunSeconds: number;
  demoSecondRunSeconds: number;
  /** The default embedder alone over the passages, batches of 64. */
  embedderAloneSeconds: number;
  /** demo first run / embedder alone */
  demoOverEmbedder: number;
  likeMiss: { p50Ms: number; p99Ms: number; queries: number };
  likeHit: { p50Ms: number; p99Ms: number };
  handWritten: { p50Ms: number; p99Ms: number };
  /** like (cache hit) p50 / hand-written p50 */
  hitOverHandWritten: number;
  insertToOutput: { p50Ms: number; p99Ms: number; maxMs: number; rows: number };
  openFreshSeconds: number;
  openExistingSeconds: number;
}

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'superduper.js');

export async function embeddedBenchmark(): Promise<EmbeddedResult> {
  const dir = mkdtempSync(join(tmpdir(), 'superduper-bench-embedded-'));
  try {
    const passages = documentationPassages().map((p) => p.body);
    const embedderAloneSeconds = await embedAlone(passages);
    const demoFirstRunSeconds = await timeDemo(dir, ['--reset']);
    const demoSecondRunSeconds = await timeDemo(dir, []);
    const served = await measureServe(dir);
    const opens = await timeOpens();
    return {
      passages: passages.length,
      demoFirstRunSeconds: round(demoFirstRunSeconds, 1),
      demoSecondRunSeconds: round(demoSecondRunSeconds, 1),
      embedderAloneSeconds: round(embedderAloneSeconds, 1),
      demoOverEmbedder: round(demoFirstRunSeconds / embedderAloneSeconds),
      ...served,
      hitOverHandWritten: round(served.likeHit.p50Ms / served.handWritten.p50Ms),
      ...opens,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function embedAlone(texts: string[]): Promise<number> {
  // The runtime the listener uses, without the database: load, then batches of 64.
  const started = performance.now();
  const model = await new TextEmbedderRuntime().load({
    name: 'default-embedder',
    runtime: 'text-embedder',
    output: { type: 'vector', dim: 512 },
    config: {},
    artifact: null,
    spec_hash: 'bench',
  });
  for (let i = 0; i < texts.length; i += 64) await model.predict(texts.slice(i, i + 64));
  return (performance.now() - started) / 1000;
}

async function timeDemo(dir: string, extra: string[]): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, 'demo', '--dir', dir, ...extra], { stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`superduper demo exited with ${code}`);
  return (performance.now() - started) / 1000;
}

async function measureServe(dir: string): Promise<Pick<EmbeddedResult, 'likeMiss' | 'likeHit' | 'handWritten' | 'insertToOutput'>> {
  const child = spawn(process.execPath, [BIN, 'serve', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const uri = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const found = /psql "([^"]+)"/.exec(out);
        if (found) resolve(found[1]!);
      });
      child.once('exit', (code) => reject(new Error(`superduper serve exited with ${code}: ${out}`)));
    });
    const client = new pg.Client({ connectionString: uri });
    await client.connect();
    try {
      const time = async (sql: string, values: unknown[]) => {
        const started = performance.now();
        await client.query(sql, values);
        return performance.now() - started;
      };
      const like = `SELECT id FROM superduper.like('docs_index', $1, 10)`;
      const handWritten = `SELECT id FROM superduper.out_docs_embedding ORDER BY output <=> $1::vector LIMIT 10`;
      await client.query(like, ['a first query, which loads the model']);
      const queries = Array.from({ length: 40 }, (_, i) => `question ${i}: how does superduper keep outputs current when rows change?`);
      const miss = [];
      for (const query of queries) miss.push(await time(like, [query]));
      const vectors = [];
      for (const query of queries) vectors.push((await client.query<{ v: string }>(`SELECT superduper.embed('default-embedder', $1)::text AS v`, [query])).rows[0]!.v);
      const hit = [];
      const hand = [];
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < queries.length; i++) {
          hit.push(await time(like, [queries[i]]));
          hand.push(await time(handWritten, [vectors[i]]));
        }
      }
      // What a psql user sees: from the INSERT's reply to the output being readable,
      // polled every 10 ms (each poll is a turn on the shared session, as the user's would be).
      const delays = [];
      for (let i = 0; i < 30; i++) {
        const id = 100_000 + i;
        await client.query(`INSERT INTO docs VALUES ($1, 'bench', 'bench', $2)`, [id, `a new note number ${i} about kittens and sofas`]);
        const inserted = performance.now();
        for (;;) {
          const found = await client.query(`SELECT 1 FROM superduper.out_docs_embedding WHERE id = $1`, [id]);
          if (found.rowCount === 1) break;
          if (performance.now() - inserted > 10_000) throw new Error(`no output for row ${id} after 10 s`);
          await sleep(10);
        }
        delays.push(performance.now() - inserted);
        await sleep(200);
      }
      await client.query(`DELETE FROM docs WHERE id >= 100000`);
      return {
        likeMiss: { ...stats(miss), queries: queries.length },
        likeHit: stats(hit),
        handWritten: stats(hand),
        insertToOutput: { ...stats(delays), maxMs: round(Math.max(...delays), 1), rows: delays.length },
      };
    } finally {
      await client.end();
    }
  } finally {
    child.kill('SIGINT');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

async function timeOpens(): Promise<Pick<EmbeddedResult, 'openFreshSeconds' | 'openExistingSeconds'>> {
  const dir = mkdtempSync(join(tmpdir(), 'superduper-bench-open-'));
  try {
    let started = performance.now();
    const fresh = await EmbeddedDatabase.open({ dataDir: dir });
    const openFreshSeconds = (performance.now() - started) / 1000;
    await fresh.close();
    started = performance.now();
    const existing = await EmbeddedDatabase.open({ dataDir: dir });
    const openExistingSeconds = (performance.now() - started) / 1000;
    await existing.close();
    return { openFreshSeconds: round(openFreshSeconds, 2), openExistingSeconds: round(openExistingSeconds, 2) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function stats(values: number[]): { p50Ms: number; p99Ms: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50Ms: round(percentile(sorted, 50), 2), p99Ms: round(percentile(sorted, 99), 2) };
}
