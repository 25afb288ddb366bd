/**
 * The embedded endpoint against the server, as pgbench sees them (issue 10): a
 * cached superduper.like() (10,000 rows, 64 dimensions, HNSW), in pgbench's
 * three protocols (-M simple, extended, prepared) from 1 and 4 clients, each
 * against the PostgreSQL server and against `superduper serve` (the production
 * build, in a child process) on an embedded folder holding the same data.
 * Five rounds, interleaved; medians of tps.
 *
 * SUPERDUPER_BENCH_COMPARE_BIN=<another build's bin/superduper.js> serves a copy
 * of the folder with that build too, in the same rounds (-M simple only: before
 * issue 10, prepared statements from several clients collided), for an A/B of
 * the endpoint itself.
 *
 *   make bench ONLY=endpoint
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Superduper } from '../src/client.js';
import { listener } from '../src/components/listener.js';
import { vectorIndex } from '../src/components/vector-index.js';
import { createLogger } from '../src/logger.js';
import { documentSql, queryTexts } from './lib/corpus.js';
import { dropDatabase, freshDatabase, open, round } from './lib/setup.js';
import { wordModel } from './lib/word-model.js';

const PGBENCH = process.env.PGBENCH ?? '/usr/lib/postgresql/15/bin/pgbench';
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'superduper.js');
const MODES = ['simple', 'extended', 'prepared'] as const;
const CLIENTS = [1, 4] as const;
const ROUNDS = 5;
const SECONDS = 4;

type Mode = (typeof MODES)[number];

export interface EndpointCase {
  mode: Mode;
  clients: number;
  serverTps: number;
  embeddedTps: number;
  /** The other build's endpoint (SUPERDUPER_BENCH_COMPARE_BIN), -M simple only. */
  compareTps?: number;
  embeddedOverServer: number;
}

export interface EndpointResult {
  rows: number;
  cases: EndpointCase[];
  /** Embedded tps in each protocol over embedded -M simple, same client count. */
  overSimple: Record<string, number>;
  compareBin?: string;
}

export async function endpointBenchmark(rows = 10_000): Promise<EndpointResult> {
  const query = queryTexts(1, 42)[0]!;
  const script = `SELECT * FROM superduper.like('items_index', '${query}', 10);\n`;
  const uri = await freshDatabase('superduper_bench_endpoint');
  const dir = mkdtempSync(join(tmpdir(), 'superduper-bench-endpoint-'));
  const served: ChildProcess[] = [];
  try {
    const server = await open(uri);
    await prepare(server, rows, query);
    await server.close();
    const embedded = await connect(`pglite:${join(dir, 'db')}`, { logger: createLogger('warn') });
    await embedded.install();
    await prepare(embedded, rows, query);
    await embedded.close();

    const compareBin = process.env.SUPERDUPER_BENCH_COMPARE_BIN;
    if (compareBin) cpSync(join(dir, 'db'), join(dir, 'compare'), { recursive: true });
    const endpoint = await serve(BIN, join(dir, 'db'), served);
    const compare = compareBin ? await serve(compareBin, join(dir, 'compare'), served) : undefined;
    writeFileSync(join(dir, 'like.sql'), script);

    const samples = new Map<string, number[]>();
    const add = (key: string, tps: number) => samples.set(key, [...(samples.get(key) ?? []), tps]);
    for (const mode of MODES) for (const clients of CLIENTS) pgbench(endpoint, mode, clients, 1, join(dir, 'like.sql')); // warm up
    for (let round_ = 0; round_ < ROUNDS; round_++) {
      for (const mode of MODES) {
        for (const clients of CLIENTS) {
          add(`server ${mode} ${clients}`, pgbench(uri, mode, clients, SECONDS, join(dir, 'like.sql')));
          add(`embedded ${mode} ${clients}`, pgbench(endpoint, mode, clients, SECONDS, join(dir, 'like.sql')));
          if (compare && mode === 'simple') add(`compare ${mode} ${clients}`, pgbench(compare, mode, clients, SECONDS, join(dir, 'like.sql')));
        }
      }
    }
    const median = (key: string) => {
      const list = [...(samples.get(key) ?? [])].sort((a, b) => a - b);
      return list.length === 0 ? undefined : list[Math.floor(list.length / 2)]!;
    };
    const cases: EndpointCase[] = [];
    const overSimple: Record<string, number> = {};
    for (const mode of MODES) {
      for (const clients of CLIENTS) {
        const serverTps = median(`server ${mode} ${clients}`)!;
        const embeddedTps = median(`embedded ${mode} ${clients}`)!;
        const compareTps = median(`compare ${mode} ${clients}`);
        cases.push({
          mode,
          clients,
          serverTps: round(serverTps, 0),
          embeddedTps: round(embeddedTps, 0),
          ...(compareTps === undefined ? {} : { compareTps: round(compareTps, 0) }),
          embeddedOverServer: round(embeddedTps / serverTps, 3),
        });
        overSimple[`${mode} ${clients}`] = round(embeddedTps / median(`embedded simple ${clients}`)!, 3);
      }
    }
    return { rows, cases, overSimple, ...(compareBin ? { compareBin } : {}) };
  } finally {
    for (const child of served) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    rmSync(dir, { recursive: true, force: true });
    await dropDatabase('superduper_bench_endpoint');
  }
}

/** The same table, model, listener and index on either backend, backfilled; the query's embedding cached. */
async function prepare(db: Superduper, rows: number, query: string): Promise<void> {
  await db.db.query('CREATE TABLE items (id int PRIMARY KEY, body text)');
  await db.db.query(documentSql('items', rows));
  await db.apply(
    wordModel('words64', { dim: 64, seed: 5 }),
    listener({ name: 'items_words', model: 'words64', table: 'items', keys: ['body'] }),
    vectorIndex({ name: 'items_index', listener: 'items_words' }),
  );
  const worker = await db.start();
  try {
    await db.waitUntilIdle({ timeoutMs: 600_000, pollMs: 200 });
    await db.db.query(`SELECT * FROM superduper.like('items_index', $1, 10)`, [query]);
  } finally {
    await worker.stop();
  }
}

/** `superduper serve <dir>` of a build, until killed: its URI. */
async function serve(bin: string, dir: string, children: ChildProcess[]): Promise<string> {
  const child = spawn(process.execPath, [bin, 'serve', dir, '--port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const uri = /psql "([^"]+)"/.exec(output)?.[1];
      if (uri) resolve(uri);
    });
    child.once('exit', (code) => reject(new Error(`superduper serve (${bin}) exited with ${code}: ${output}`)));
  });
}

/** tps of a pgbench run; fails on any failed transaction (a protocol that errors measures nothing). */
function pgbench(uri: string, mode: Mode, clients: number, seconds: number, script: string): number {
  const output = execFileSync(PGBENCH, ['-n', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds), '-f', script, uri], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const failed = Number(/number of failed transactions: (\d+)/.exec(output)?.[1] ?? 0);
  if (failed > 0) throw new Error(`pgbench -M ${mode} -c ${clients} against ${uri}: ${failed} failed transactions\n${output}`);
  return Number(/tps = ([\d.]+)/.exec(output)?.[1]);
}
