/**
 * Sidecar memory during a large backfill: the CLI sidecar (`superduper start`, a
 * separate process, as in production) computes an ONNX embedding over N rows
 * while its resident memory is sampled from /proc. Rows are claimed in ranges of
 * chunk_size and never loaded at once, so memory should stay flat.
 *
 *   make bench ONLY=memory
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listener } from '../src/components/listener.js';
import { documentSql } from './lib/corpus.js';
import { dropDatabase, freshDatabase, open, round, sleep } from './lib/setup.js';
import { wordModel } from './lib/word-model.js';

export interface MemoryResult {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  peakRssMb: number;
  /** RSS in MB when 10%, 20%, ... 100% of the rows were done. */
  rssAtProgressMb: number[];
}

function rssKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
}

export async function memoryBenchmark(rows = 1_000_000): Promise<MemoryResult> {
  const uri = await freshDatabase('superduper_bench_memory');
  const db = await open(uri);
  const cli = join(import.meta.dirname, '..', '..', 'bin', 'superduper.js');
  const sidecar = spawn(process.execPath, [cli, 'start', uri, '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
  try {
    await db.db.query('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await db.db.query(documentSql('docs', rows));
    await db.db.query('VACUUM ANALYZE docs');
    await sleep(1000); // the sidecar is up and idle
    const started = performance.now();
    await db.apply(
      wordModel('words', { dim: 64, seed: 3 }),
      listener({ name: 'docs_words', model: 'words', table: 'docs', keys: ['body'] }),
    );
    const rssAtProgressMb: number[] = [];
    let nextMark = 0.1;
    for (;;) {
      const [status] = await db.status({ countDone: false });
      const remaining = (status?.pending ?? 0) + (status?.in_flight ?? 0);
      const progress = 1 - remaining / rows;
      while (progress >= nextMark - 1e-9 && nextMark <= 1 + 1e-9) {
        rssAtProgressMb.push(round(rssKb(sidecar.pid!, 'VmRSS') / 1024, 1));
        nextMark += 0.1;
      }
      if (remaining === 0) break;
      await sleep(200);
    }
    const seconds = (performance.now() - started) / 1000;
    const done = await db.db.query<{ n: number }>('SELECT count(*)::int AS n FROM superduper.out_docs_words');
    if (done.rows[0]!.n !== rows) throw new Error(`the sidecar computed ${done.rows[0]!.n} of ${rows} rows`);
    return {
      rows,
      seconds: round(seconds, 1),
      rowsPerSecond: Math.round(rows / seconds),
      peakRssMb: round(rssKb(sidecar.pid!, 'VmHWM') / 1024, 1),
      rssAtProgressMb,
    };
  } finally {
    sidecar.kill('SIGTERM');
    await new Promise((resolve) => sidecar.once('exit', resolve));
    await db.close();
    await dropDatabase('superduper_bench_memory');
  }
}
