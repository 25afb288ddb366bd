/**
 * Training (issue 16): a trainer's run, from claim to record (reading the rows
 * through a cursor, encoding them, the fit in a worker thread, the metrics,
 * storing the artifact), against the library's own fit on the same rows read
 * into memory beforehand: TensorFlow.js's model.fit of the same model
 * (bench/lib/library-fit-child.ts: one sigmoid unit, Adam, the trainer's
 * default rate and batches, the same epochs) on as many rows as the run fits (the held-out fifth
 * excluded), in a fresh process of its own as the run's fit is in a fresh
 * worker thread (measured in this process, with its heap full of the other
 * benchmarks' garbage, an earlier library's fit took twice as long). Interleaved, library then run,
 * three rounds; the ratio is of the medians (library fit / run wall time; 1.0
 * means the database read and the artifact write cost nothing).
 *
 * Then the sidecar's memory (a CLI sidecar, its own process) while a run
 * trains on 1,000,000 rows, and the refusal of the same run under a limit too
 * small for it.
 *
 *   make bench ONLY=training
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Superduper } from '../src/client.js';
import { trainer } from '../src/components/trainer.js';
import { dropDatabase, freshDatabase, open, round, sleep } from './lib/setup.js';

export interface TrainingResult {
  rows: number;
  features: number;
  epochs: number;
  trainedRows: number;
  libraryFitSeconds: number[];
  runSeconds: number[];
  /** The fit alone inside each run (the library's calls, as the run records it). */
  runFitSeconds: number[];
  /** Median library fit / median run wall time: at least 0.9 is the target. */
  ratio: number;
  memory: {
    rows: number;
    algorithm: string;
    runSeconds: number;
    idleRssMb: number;
    peakRssMb: number;
    /** The same run under SUPERDUPER_TRAINING_MEMORY_MB=64: its error. */
    refusedWith: string;
  };
}

const FEATURES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];

/** Rows of 8 numbers and a label from a noisy rule of them, the same every run (hashes of the row number). */
function tableSql(rows: number): string {
  const value = (k: number) => `((hashint4(i * ${k + 3}) % 10000) / 5000.0 - 1)::float8`;
  return `CREATE TABLE points (id int PRIMARY KEY, ${FEATURES.map((f) => `${f} float8`).join(', ')}, label boolean);
          INSERT INTO points SELECT i, ${FEATURES.map((_, k) => value(k)).join(', ')}, false FROM generate_series(1, ${rows}) AS i;
          UPDATE points SET label = a * b * 2 + c - 0.5 * d + ((hashint4(id) % 100) / 333.0) > 0`;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

function rssKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
}

/** A CLI sidecar (`superduper start`), as in production. */
async function startSidecar(uri: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const cli = join(import.meta.dirname, '..', '..', 'bin', 'superduper.js');
  const sidecar = spawn(process.execPath, [cli, 'start', uri, '--log-level', 'warn', '--reconcile-ms', '100'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...env },
  });
  await sleep(1500); // up and idle
  return sidecar;
}

async function stopSidecar(sidecar: ChildProcess): Promise<void> {
  sidecar.kill('SIGTERM');
  await new Promise((resolve) => sidecar.once('exit', resolve));
}

type RunRow = { state: string; seconds: number; fit_seconds: number; trained_rows: number; error: string | null };

/** Queues a run and waits for it; its record. */
async function trainOnce(db: Superduper, name: string): Promise<RunRow> {
  const run = await db.train(name);
  for (;;) {
    const result = await db.db.query<RunRow>(
      `SELECT state, seconds, fit_seconds, trained_rows::int, error FROM superduper.training_runs WHERE trainer = $1 AND run = $2`,
      [name, run],
    );
    const row = result.rows[0];
    if (row && (row.state === 'done' || row.state === 'failed')) return row;
    await sleep(50);
  }
}

/** The library's own fit on the first `rows` rows, read into memory first, in a process of its own (bench/lib/library-fit-child.ts). */
async function libraryFit(uri: string, rows: number, epochs: number): Promise<number> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'library-fit-child.mjs'), uri, String(rows), String(epochs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the library's fit exited with ${code}`);
  return Number(output.trim());
}

export async function trainingBenchmark(rows = 100_000, epochs = 20, rounds = 3, memoryRows = 1_000_000): Promise<TrainingResult> {
  const uri = await freshDatabase('superduper_bench_training');
  const db = await open(uri);
  let sidecar = await startSidecar(uri);
  try {
    await db.db.query(tableSql(rows));
    await db.db.query('VACUUM ANALYZE points');
    await db.apply(
      trainer({ name: 'bench', table: 'points', features: FEATURES, target: 'label', task: 'classification', hyperparameters: { epochs } }),
    );
    // The apply's own run first: a warm-up, not measured.
    const warm = await trainOnce(db, 'bench');
    if (warm.state !== 'done') throw new Error(`the warm-up run failed: ${warm.error}`);
    const libraryFitSeconds: number[] = [];
    const runSeconds: number[] = [];
    const runFitSeconds: number[] = [];
    for (let i = 0; i < rounds; i++) {
      libraryFitSeconds.push(round(await libraryFit(uri, warm.trained_rows, epochs), 3));
      const run = await trainOnce(db, 'bench');
      if (run.state !== 'done') throw new Error(`run failed: ${run.error}`);
      runSeconds.push(round(run.seconds, 3));
      runFitSeconds.push(round(run.fit_seconds, 3));
    }

    // Memory on a million rows, then the refusal under a small limit.
    await db.remove('bench');
    await db.db.query('DROP TABLE points');
    await db.db.query(tableSql(memoryRows));
    await db.db.query('VACUUM ANALYZE points');
    await stopSidecar(sidecar);
    sidecar = await startSidecar(uri);
    const idleRssMb = round(rssKb(sidecar.pid!, 'VmRSS') / 1024, 1);
    await db.apply(trainer({ name: 'million', table: 'points', features: FEATURES, target: 'label', task: 'classification', hyperparameters: { epochs: 20 } }));
    const first = await trainOnce(db, 'million');
    if (first.state !== 'done') throw new Error(`the million-row run failed: ${first.error}`);
    const peakRssMb = round(rssKb(sidecar.pid!, 'VmHWM') / 1024, 1);
    await stopSidecar(sidecar);
    sidecar = await startSidecar(uri, { SUPERDUPER_TRAINING_MEMORY_MB: '64' });
    const refused = await trainOnce(db, 'million');
    return {
      rows,
      features: FEATURES.length,
      epochs,
      trainedRows: warm.trained_rows,
      libraryFitSeconds,
      runSeconds,
      runFitSeconds,
      ratio: round(median(libraryFitSeconds) / median(runSeconds), 3),
      memory: { rows: memoryRows, algorithm: 'logistic_regression (20 epochs)', runSeconds: round(first.seconds, 1), idleRssMb, peakRssMb, refusedWith: refused.error ?? `(${refused.state})` },
    };
  } finally {
    await stopSidecar(sidecar);
    await db.close();
    await dropDatabase('superduper_bench_training');
  }
}
