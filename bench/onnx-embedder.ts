/**
 * An ONNX sentence embedder the size of all-MiniLM-L6-v2 (bench/lib/encoder-graph.ts):
 *
 * 1. Batch size: onnxruntime alone, in memory, at batch sizes 1…128; the
 *    smallest batch within 5% of the best throughput is used below (bigger
 *    batches only add latency for a streaming listener).
 * 2. Overhead: a listener backfilling N rows, against onnxruntime called
 *    directly on the same texts, already in memory, in batches of that size
 *    (no database at all on the baseline side: the strictest comparison).
 *    Rounds alternate so drift on a shared machine hits both alike.
 * 3. Loading: each model kind loaded in a fresh process (bench/lib/load-child.ts):
 *    load time and resident memory; and, in the backfill, how many times the
 *    sidecar loaded the model (once, whatever the number of batches).
 *
 *   make bench ONLY=onnx-embedder
 */
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import { listener } from '../src/components/listener.js';
import { onnxModel } from '../src/components/model.js';
import { tokenizeBatch } from '../src/models/word-tokenizer.js';
import { documentSql } from './lib/corpus.js';
import { encoderGraph, MINILM_SHAPE } from './lib/encoder-graph.js';
import { dropDatabase, freshDatabase, open, round } from './lib/setup.js';

const MAX_LENGTH = 32;
const tokenizer = { type: 'words' as const, vocab_size: MINILM_SHAPE.vocab, max_length: MAX_LENGTH };
const BATCH_SIZES = [1, 8, 16, 32, 64, 128];

export interface ModelLoad {
  kind: string;
  loadMs: number;
  rssBeforeMB: number;
  rssAfterMB: number;
  rssAfterFirstCallMB: number;
  artifactMB: number | null;
}

export interface OnnxEmbedderResult {
  model: string;
  rows: number;
  rounds: number;
  /** onnxruntime alone, rows/s by batch size. */
  directRowsPerSecondByBatch: Record<string, number>;
  batchSize: number;
  directSeconds: number[];
  listenerSeconds: number[];
  directRowsPerSecond: number;
  listenerRowsPerSecond: number;
  /** listener throughput / direct throughput (medians). */
  ratio: number;
  /** Model loads by the sidecar during all listener rounds. */
  sidecarLoads: number;
  loads: ModelLoad[];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function direct(session: ort.InferenceSession, texts: string[], batchSize: number): Promise<number> {
  const started = performance.now();
  for (let start = 0; start < texts.length; start += batchSize) {
    const batch = texts.slice(start, start + batchSize);
    const { ids, mask } = tokenizeBatch(batch, tokenizer);
    const dims = [batch.length, MAX_LENGTH];
    await session.run({ input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', mask, dims) });
  }
  return (performance.now() - started) / 1000;
}

function chooseBatchSize(throughput: Record<string, number>): number {
  const best = Math.max(...Object.values(throughput));
  return BATCH_SIZES.find((size) => throughput[size]! >= 0.95 * best)!;
}

async function loadInChild(kind: string, file: string): Promise<ModelLoad> {
  const script = join(import.meta.dirname, 'load-child.mjs');
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', script, kind, file]);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ModelLoad;
}

export async function onnxEmbedderBenchmark(rows = 3000, rounds = 3): Promise<OnnxEmbedderResult> {
  const model = encoderGraph();
  const uri = await freshDatabase('superduper_bench_onnx');
  const db = await open(uri);
  try {
    await db.db.query('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await db.db.query(documentSql('docs', rows));
    const texts = (await db.db.query<{ body: string }>('SELECT body FROM docs ORDER BY id')).rows.map((r) => r.body);

    const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all' });
    await direct(session, texts.slice(0, 64), 32); // warm up
    const directRowsPerSecondByBatch: Record<string, number> = {};
    for (const size of BATCH_SIZES) {
      const sample = texts.slice(0, size === 1 ? 128 : 512);
      directRowsPerSecondByBatch[size] = round(sample.length / (await direct(session, sample, size)), 1);
    }
    const batchSize = chooseBatchSize(directRowsPerSecondByBatch);

    await db.start();
    const listenerRound = async (i: number) => {
      const name = `docs_encoder_${i}`;
      const started = performance.now();
      await db.apply(
        onnxModel({ name: 'encoder', file: model, output: { type: 'vector', dim: MINILM_SHAPE.hidden }, tokenizer }),
        listener({ name, model: 'encoder', table: 'docs', keys: ['body'], settings: { batch_size: batchSize, chunk_size: batchSize * 4 } }),
      );
      await db.waitUntilIdle({ listeners: [name], timeoutMs: 600_000 });
      const seconds = (performance.now() - started) / 1000;
      const count = await db.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM superduper."out_${name}"`);
      if (count.rows[0]!.n !== rows) throw new Error(`listener computed ${count.rows[0]!.n} of ${rows} rows`);
      await db.remove(name);
      return seconds;
    };
    const directSeconds: number[] = [];
    const listenerSeconds: number[] = [];
    for (let i = 0; i < rounds; i++) {
      directSeconds.push(await direct(session, texts, batchSize));
      listenerSeconds.push(await listenerRound(i));
    }
    await session.release();
    const sidecarLoads = db.models.loads.filter((load) => load.model === 'encoder').length;

    const file = join(tmpdir(), `superduper-bench-encoder-${process.pid}.onnx`);
    writeFileSync(file, model);
    const loads: ModelLoad[] = [];
    for (const kind of ['default-embedder', 'onnx-minilm-shaped']) loads.push(await loadInChild(kind, file));
    rmSync(file);

    const directRowsPerSecond = rows / median(directSeconds);
    const listenerRowsPerSecond = rows / median(listenerSeconds);
    return {
      model: `transformer encoder shaped like all-MiniLM-L6-v2 (${MINILM_SHAPE.layers} layers, hidden ${MINILM_SHAPE.hidden}, ${MINILM_SHAPE.heads} heads, vocab ${MINILM_SHAPE.vocab}), ${MAX_LENGTH} tokens`,
      rows,
      rounds,
      directRowsPerSecondByBatch,
      batchSize,
      directSeconds: directSeconds.map((s) => round(s, 2)),
      listenerSeconds: listenerSeconds.map((s) => round(s, 2)),
      directRowsPerSecond: round(directRowsPerSecond, 1),
      listenerRowsPerSecond: round(listenerRowsPerSecond, 1),
      ratio: round(listenerRowsPerSecond / directRowsPerSecond, 3),
      sidecarLoads,
      loads,
    };
  } finally {
    await db.close();
    await dropDatabase('superduper_bench_onnx');
  }
}
