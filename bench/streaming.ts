/**
 * Streaming latency: rows inserted one by one at a steady rate; for each, the
 * time from its INSERT being committed (the client's await returning) to its
 * output being committed (a NOTIFY sent by a benchmark-only trigger on the
 * outputs table, delivered at the sidecar's commit). The sidecar runs in its
 * own process, with a model that spends ~1 ms of CPU per call.
 *
 *   make bench ONLY=streaming
 */
import { join } from 'node:path';
import pg from 'pg';
import { listener } from '../src/components/listener.js';
import { startChild, stopChild } from './lib/child.js';
import { dropDatabase, freshDatabase, open, percentile, round, sleep } from './lib/setup.js';

export interface StreamingResult {
  rate: number;
  seconds: number;
  rows: number;
  modelMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export async function streamingBenchmark(rate = 100, seconds = 20, modelMs = 1, metrics = false): Promise<StreamingResult> {
  const uri = await freshDatabase('superduper_bench_streaming');
  const db = await open(uri);
  const sidecar = await startChild(join(import.meta.dirname, 'sidecar-child.mjs'), [uri, String(modelMs)], metrics ? { SUPERDUPER_BENCH_METRICS: '1' } : {});
  const writer = new pg.Client({ connectionString: uri });
  const listenerClient = new pg.Client({ connectionString: uri });
  try {
    await db.db.query('CREATE TABLE events (id bigserial PRIMARY KEY, body text NOT NULL)');
    await db.apply(listener({ name: 'events_busy', model: 'busy', table: 'events', keys: ['body'] }));
    await db.db.query(`CREATE FUNCTION bench_done() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_notify('bench_done', NEW.id::text); RETURN NULL; END $$;
      CREATE TRIGGER bench_done AFTER INSERT OR UPDATE ON superduper.out_events_busy FOR EACH ROW EXECUTE FUNCTION bench_done()`);
    await writer.connect();
    await listenerClient.connect();
    // Rows of the first two seconds warm up and are not measured.
    const committedAt = new Map<string, number>();
    const latencies: number[] = [];
    listenerClient.on('notification', (message) => {
      const at = committedAt.get(message.payload!);
      if (at !== undefined) latencies.push(performance.now() - at);
      committedAt.delete(message.payload!);
    });
    await listenerClient.query('LISTEN bench_done');

    const interval = 1000 / rate;
    const total = rate * seconds;
    const warmup = rate * 2;
    const started = performance.now();
    for (let i = 0; i < warmup + total; i++) {
      // Steady rate: each insert at its own slot, not "interval after the last".
      const due = started + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const result = await writer.query<{ id: string }>('INSERT INTO events (body) VALUES ($1) RETURNING id', [`event number ${i}`]);
      if (i >= warmup) committedAt.set(result.rows[0]!.id, performance.now());
    }
    await sleep(2000);
    const sorted = [...latencies].sort((a, b) => a - b);
    if (sorted.length < total * 0.99) throw new Error(`only ${sorted.length} of ${total} outputs arrived`);
    return {
      rate,
      seconds,
      rows: sorted.length,
      modelMs,
      p50Ms: round(percentile(sorted, 50)),
      p90Ms: round(percentile(sorted, 90)),
      p99Ms: round(percentile(sorted, 99)),
      maxMs: round(sorted.at(-1)!),
    };
  } finally {
    await writer.end().catch(() => {});
    await listenerClient.end().catch(() => {});
    await stopChild(sidecar);
    await db.close();
    await dropDatabase('superduper_bench_streaming');
  }
}
