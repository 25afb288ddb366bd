/**
 * Write overhead: pgbench, single-row INSERT transactions from 4 clients, into a
 * table without a listener and into the same table with one (no sidecar
 * running, so the log only grows: this is the triggers' cost alone). Many short
 * runs alternate A, B, A, B... and the medians are compared: on this shared
 * machine, identical 10 s runs differ by 15%. Then the same with
 * a sidecar computing the listener meanwhile, sharing the two cores.
 *
 *   make bench ONLY=write-overhead
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listener } from '../src/components/listener.js';
import { startChild, stopChild } from './lib/child.js';
import { dropDatabase, freshDatabase, open, round } from './lib/setup.js';

const PGBENCH = process.env.PGBENCH ?? '/usr/lib/postgresql/15/bin/pgbench';

export interface WriteOverheadResult {
  clients: number;
  secondsPerRun: number;
  runs: number;
  plainTps: number[];
  listenedTps: number[];
  /** median(listened) / median(plain), no sidecar running */
  ratio: number;
  withSidecar: { plainTps: number[]; listenedTps: number[]; ratio: number };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function pgbench(uri: string, script: string, seconds: number): number {
  const output = execFileSync(PGBENCH, ['-n', '-c', '4', '-j', '2', '-T', String(seconds), '-f', script, uri], { encoding: 'utf8' });
  const match = /tps = ([\d.]+)/.exec(output);
  if (!match) throw new Error(`no tps in pgbench output:\n${output}`);
  return Number(match[1]);
}

export async function writeOverheadBenchmark(seconds = 4, runs = 7): Promise<WriteOverheadResult> {
  const uri = await freshDatabase('superduper_bench_writes');
  const db = await open(uri);
  const dir = mkdtempSync(join(tmpdir(), 'sd-pgbench-'));
  try {
    await db.db.query(`CREATE TABLE plain_t (id bigserial PRIMARY KEY, body text NOT NULL);
                       CREATE TABLE listened_t (id bigserial PRIMARY KEY, body text NOT NULL)`);
    // The model is never run in the first half (no sidecar); in the second half a
    // sidecar computes it, spending ~0.2 ms of CPU per call.
    await db.apply({ type: 'model', name: 'busy', runtime: 'function', output: { type: 'vector', dim: 16 } });
    await db.apply(listener({ name: 'listened', model: 'busy', table: 'listened_t', keys: ['body'] }));
    for (const table of ['plain_t', 'listened_t']) {
      writeFileSync(join(dir, `${table}.sql`), `\\set n random(1, 1000000)\nINSERT INTO ${table} (body) VALUES ('document text number ' || :n);\n`);
    }
    const measure = () => {
      const plain: number[] = [];
      const listened: number[] = [];
      for (let i = 0; i < runs; i++) {
        plain.push(pgbench(uri, join(dir, 'plain_t.sql'), seconds));
        listened.push(pgbench(uri, join(dir, 'listened_t.sql'), seconds));
      }
      return { plainTps: plain.map((t) => round(t, 0)), listenedTps: listened.map((t) => round(t, 0)), ratio: round(median(listened) / median(plain), 3) };
    };
    const alone = measure();
    await db.db.query('TRUNCATE plain_t, listened_t');
    const sidecar = await startChild(join(import.meta.dirname, 'sidecar-child.mjs'), [uri, '0.2']);
    let withSidecar: WriteOverheadResult['withSidecar'];
    try {
      withSidecar = measure();
    } finally {
      await stopChild(sidecar);
    }
    return { clients: 4, secondsPerRun: seconds, runs, ...alone, withSidecar };
  } finally {
    await db.close();
    await dropDatabase('superduper_bench_writes');
  }
}
