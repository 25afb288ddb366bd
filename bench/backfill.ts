/**
 * Backfill: a listener computing a fast ONNX model over N existing rows, against
 * a baseline that runs the same model over the same rows in the same batches and
 * bulk-writes the outputs (keyset-paged reads of chunk_size rows, one INSERT per
 * chunk, binary vectors), with no queue, no claims, no version checks.
 *
 *   make bench ONLY=backfill
 */
import ort from 'onnxruntime-node';
import { benchMetrics } from './lib/metrics.js';
import type { Superduper } from '../src/client.js';
import { listener } from '../src/components/listener.js';
import { onnxModel } from '../src/components/model.js';
import { wordEmbeddingModel } from '../src/models/onnx-builder.js';
import { tokenizeBatch } from '../src/models/word-tokenizer.js';
import { encodeVectorArray } from '../src/backends/postgres/vector-binary.js';
import { documentSql } from './lib/corpus.js';
import { dropDatabase, freshDatabase, open, round } from './lib/setup.js';

export const BACKFILL = { chunkSize: 1000, batchSize: 256, vocab: 32768, dim: 64, maxLength: 32 };
const tokenizer = { type: 'words' as const, vocab_size: BACKFILL.vocab, max_length: BACKFILL.maxLength };

export interface BackfillResult {
  rows: number;
  rounds: number;
  baselineSeconds: number[];
  superduperSeconds: number[];
  /** median(superduper) / median(baseline) */
  ratio: number;
  modelBytes: number;
  chunkSize: number;
  batchSize: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function baseline(db: Superduper, model: Uint8Array, rows: number): Promise<number> {
  await db.db.query(`DROP TABLE IF EXISTS baseline_out;
    CREATE TABLE baseline_out (id int PRIMARY KEY, output vector(${BACKFILL.dim}), _stamp bigint NOT NULL DEFAULT 0,
                               _computed_at timestamptz NOT NULL DEFAULT now())`);
  await db.db.refreshTypes();
  const vectorOid = Number((await db.db.query<{ oid: number }>(`SELECT 'vector'::regtype::oid::int AS oid`)).rows[0]!.oid);
  const started = performance.now();
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all' });
  let last = 0;
  let done = 0;
  for (;;) {
    const chunk = await db.db.query<{ id: number; body: string }>(
      'SELECT id, body FROM docs WHERE id > $1 ORDER BY id LIMIT $2',
      [last, BACKFILL.chunkSize],
    );
    if (chunk.rows.length === 0) break;
    const outputs: Float32Array[] = [];
    for (let start = 0; start < chunk.rows.length; start += BACKFILL.batchSize) {
      const batch = chunk.rows.slice(start, start + BACKFILL.batchSize);
      const { ids, mask } = tokenizeBatch(batch.map((r) => r.body), tokenizer);
      const dims = [batch.length, BACKFILL.maxLength];
      const result = await session.run({ input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', mask, dims) });
      const data = result.embedding!.data as Float32Array;
      for (let i = 0; i < batch.length; i++) outputs.push(data.subarray(i * BACKFILL.dim, (i + 1) * BACKFILL.dim));
    }
    await db.db.query('INSERT INTO baseline_out (id, output) SELECT * FROM unnest($1::int[], $2::vector[])', [
      chunk.rows.map((r) => r.id),
      encodeVectorArray(outputs, vectorOid),
    ]);
    last = chunk.rows.at(-1)!.id;
    done += chunk.rows.length;
  }
  await session.release();
  if (done !== rows) throw new Error(`baseline computed ${done} of ${rows} rows`);
  return (performance.now() - started) / 1000;
}

async function superduper(db: Superduper, model: Uint8Array, rows: number, round: number): Promise<number> {
  const name = `docs_words_${round < 0 ? 'warmup' : round}`;
  const started = performance.now();
  await db.apply(
    onnxModel({ name: 'words', file: model, output: { type: 'vector', dim: BACKFILL.dim }, tokenizer }),
    listener({ name, model: 'words', table: 'docs', keys: ['body'], settings: { chunk_size: BACKFILL.chunkSize, batch_size: BACKFILL.batchSize } }),
  );
  await db.waitUntilIdle({ listeners: [name], timeoutMs: 600_000, pollMs: Number(process.env.POLL ?? 20) });
  const seconds = (performance.now() - started) / 1000;
  const count = await db.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM superduper."out_${name}"`);
  if (count.rows[0]!.n !== rows) throw new Error(`superduper computed ${count.rows[0]!.n} of ${rows} rows`);
  await db.remove(name);
  return seconds;
}

export async function backfillBenchmark(rows = 100_000, rounds = 5, metrics = false): Promise<BackfillResult> {
  const uri = await freshDatabase('superduper_bench_backfill');
  const db = await open(uri);
  try {
    await db.db.query('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await db.db.query(documentSql('docs', rows));
    await db.db.query('VACUUM ANALYZE docs');
    const model = wordEmbeddingModel({ vocabSize: BACKFILL.vocab, dim: BACKFILL.dim, seed: 3 });
    await db.start({ concurrency: Number(process.env.LANES ?? 2), observer: metrics ? benchMetrics(db) : undefined });
    const baselineSeconds: number[] = [];
    const superduperSeconds: number[] = [];
    // One untimed round each first (the model file is stored and loaded once,
    // caches warm), then alternate, so drift on a shared machine hits both alike.
    const only = process.env.BENCH_ONLY; // 'baseline' or 'superduper', for profiling one side
    if (only !== 'superduper') await baseline(db, model, rows);
    if (only !== 'baseline') await superduper(db, model, rows, -1);
    for (let i = 0; i < rounds; i++) {
      if (only !== 'superduper') baselineSeconds.push(await baseline(db, model, rows));
      if (only !== 'baseline') superduperSeconds.push(await superduper(db, model, rows, i));
    }
    return {
      rows,
      rounds,
      baselineSeconds: baselineSeconds.map((s) => round(s, 3)),
      superduperSeconds: superduperSeconds.map((s) => round(s, 3)),
      ratio: round(median(superduperSeconds) / median(baselineSeconds), 3),
      modelBytes: model.length,
      chunkSize: BACKFILL.chunkSize,
      batchSize: BACKFILL.batchSize,
    };
  } finally {
    await db.close();
    await dropDatabase('superduper_bench_backfill');
  }
}
