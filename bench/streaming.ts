/**
 * Streaming latency (issue 17): rows inserted one by one at a steady rate;
 * for each, the time from its INSERT being committed (the client's await
 * returning) to its output being committed (a NOTIFY sent by a
 * benchmark-only trigger on the outputs table, delivered at the writer of the
 * output's commit), with the same ~1 ms model in each system:
 *
 * - superduper: a listener and a sidecar in its own process (sidecar-child);
 * - the baseline: the same pipeline built by hand on graphile-worker, a
 *   trigger calling add_job per row and one worker at its defaults
 *   (graphile-child), writing the same output into a table of its own.
 *
 * Rounds interleave the two (baseline first), each with a fresh child
 * process, 2 s of warm-up not measured; per rate, the medians of the
 * rounds' p50 and p99. Then one more superduper round at the first rate with
 * the sidecar's batches timed (bench/lib/timeline.ts): where the time goes.
 *
 *   make bench ONLY=streaming
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runMigrations } from 'graphile-worker';
import { listener } from '../src/components/listener.js';
import { startChild, stopChild } from './lib/child.js';
import { dropDatabase, freshDatabase, open, percentile, round, sleep } from './lib/setup.js';
import { wallMs, type TimelineEvent } from './lib/timeline.js';

export interface LatencyResult {
  rate: number;
  seconds: number;
  rows: number;
  modelMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface SystemRounds {
  p50Ms: number[];
  p99Ms: number[];
  /** Outputs that arrived of those measured, per round (under 1: it fell behind). */
  arrived: number[];
  /** Medians of the rounds. */
  p50: number;
  p99: number;
}

export interface StreamingResult {
  modelMs: number;
  seconds: number;
  rounds: number;
  rates: Array<{ rate: number; superduper: SystemRounds; graphileWorker: SystemRounds; p50Ratio: number; p99Ratio: number }>;
  /** One superduper round at the first rate, each row's path in parts (medians, ms). */
  breakdown: Record<string, number> & { rows: number };
}

const SYSTEMS = {
  superduper: { table: 'events', prefix: 'sd' },
  graphileWorker: { table: 'gw_events', prefix: 'gw' },
} as const;
type System = keyof typeof SYSTEMS;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** Both pipelines in one database: the listener on events, graphile-worker's trigger on gw_events; each output announces itself on bench_done. */
async function setUp(uri: string, modelMs: number): Promise<void> {
  const db = await open(uri);
  // The sidecar child registers the function model the listener uses.
  const child = await startChild(join(import.meta.dirname, 'sidecar-child.mjs'), [uri, String(modelMs)]);
  try {
    await db.db.query('CREATE TABLE events (id bigserial PRIMARY KEY, body text NOT NULL)');
    await db.apply(listener({ name: 'events_busy', model: 'busy', table: 'events', keys: ['body'] }));
  } finally {
    await stopChild(child);
  }
  await runMigrations({ connectionString: uri, logger: undefined });
  await db.db.query(`
    CREATE TABLE gw_events (id bigserial PRIMARY KEY, body text NOT NULL);
    CREATE TABLE gw_out (id bigint PRIMARY KEY, output vector(16) NOT NULL);
    CREATE FUNCTION gw_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM graphile_worker.add_job('compute', json_build_object('id', NEW.id, 'body', NEW.body)); RETURN NEW; END $$;
    CREATE TRIGGER gw_enqueue AFTER INSERT ON gw_events FOR EACH ROW EXECUTE FUNCTION gw_enqueue();
    CREATE FUNCTION bench_done() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_notify('bench_done', TG_ARGV[0] || ':' || NEW.id); RETURN NULL; END $$;
    CREATE TRIGGER bench_done AFTER INSERT OR UPDATE ON superduper.out_events_busy FOR EACH ROW EXECUTE FUNCTION bench_done('sd');
    CREATE TRIGGER bench_done AFTER INSERT OR UPDATE ON gw_out FOR EACH ROW EXECUTE FUNCTION bench_done('gw')`);
  await db.close();
}

/** Inserts rate rows a second for 2 + seconds seconds into the system's table; each measured row's commit and output times (wallMs). */
async function measure(uri: string, system: System, rate: number, seconds: number): Promise<Array<{ committed: number; done: number }>> {
  const { table, prefix } = SYSTEMS[system];
  const writer = new pg.Client({ connectionString: uri });
  const watcher = new pg.Client({ connectionString: uri });
  await writer.connect();
  await watcher.connect();
  try {
    const committedAt = new Map<string, number>();
    // An output's NOTIFY handled before its INSERT's acknowledgement (both
    // waited in their sockets while this event loop was busy): kept until the
    // acknowledgement is, and counted as arriving with it.
    const early = new Map<string, number>();
    const rows: Array<{ committed: number; done: number }> = [];
    watcher.on('notification', (message) => {
      const at = committedAt.get(message.payload!);
      if (at !== undefined) rows.push({ committed: at, done: wallMs() });
      else early.set(message.payload!, wallMs());
      committedAt.delete(message.payload!);
    });
    await watcher.query('LISTEN bench_done');
    const interval = 1000 / rate;
    const total = rate * seconds;
    const warmup = rate * 2;
    const started = performance.now();
    for (let i = 0; i < warmup + total; i++) {
      // Steady rate: each insert at its own slot, not "interval after the last".
      const wait = started + i * interval - performance.now();
      if (wait > 0) await sleep(wait);
      const result = await writer.query<{ id: string }>(`INSERT INTO ${table} (body) VALUES ($1) RETURNING id`, [`event number ${i}`]);
      if (i < warmup) continue;
      const key = `${prefix}:${result.rows[0]!.id}`;
      const committed = wallMs();
      if (early.has(key)) rows.push({ committed, done: Math.max(committed, early.get(key)!) });
      else committedAt.set(key, committed);
    }
    // A system that falls behind gets 30 s to catch up; what has not arrived by then is counted missing.
    const deadline = performance.now() + 30_000;
    while (rows.length < total && performance.now() < deadline) await sleep(100);
    await sleep(200);
    if (system === 'superduper' && rows.length < total) throw new Error(`${system}: only ${rows.length} of ${total} outputs arrived`);
    return rows;
  } finally {
    await writer.end().catch(() => {});
    await watcher.end().catch(() => {});
  }
}

function summarize(rows: Array<{ committed: number; done: number }>, rate: number, seconds: number, modelMs: number): LatencyResult {
  const sorted = rows.map((r) => r.done - r.committed).sort((a, b) => a - b);
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
}

/**
 * graphile-worker's concurrency: its default, 1, at 100 rows/s; at 1,000 rows/s
 * one job at a time cannot keep up (about 180 jobs/s here), so there it runs 4
 * at once, as its documentation advises for throughput.
 */
const graphileConcurrency = (rate: number) => (rate > 200 ? 4 : 1);

async function round1(uri: string, system: System, rate: number, seconds: number, modelMs: number, env: Record<string, string> = {}) {
  const child = system === 'superduper'
    ? await startChild(join(import.meta.dirname, 'sidecar-child.mjs'), [uri, String(modelMs)], env)
    : await startChild(join(import.meta.dirname, 'graphile-child.mjs'), [uri, String(modelMs), String(graphileConcurrency(rate))], env);
  try {
    await sleep(500); // idle, as between bursts
    return await measure(uri, system, rate, seconds);
  } finally {
    await stopChild(child);
  }
}

/**
 * Each measured row's path through the sidecar, from its batch's timed
 * events: delivery of the wake-up (writer's commit acknowledged → NOTIFY in
 * the sidecar's process; negative when it arrives first), the wake (NOTIFY →
 * the claim sent), the claim, the gap to the model, the model, the write (its
 * commit included), and the output's NOTIFY reaching the benchmark.
 */
function breakdown(rows: Array<{ committed: number; done: number }>, events: TimelineEvent[]): StreamingResult['breakdown'] {
  const parts: Record<string, number[]> = { delivery: [], wake: [], claim: [], toModel: [], model: [], write: [], announce: [] };
  const byKind = (kind: TimelineEvent['kind']) => events.filter((e) => e.kind === kind && (kind === 'notified' || e.rows > 0));
  const wrote = byKind('wrote');
  const claimed = byKind('claimed');
  const predicted = byKind('predicted');
  const notified = byKind('notified');
  const lastBefore = (list: TimelineEvent[], at: number) => {
    let found: TimelineEvent | undefined;
    for (const e of list) if (e.at <= at) found = e;
    return found;
  };
  for (const row of rows) {
    const write = lastBefore(wrote, row.done);
    if (!write) continue;
    const model = lastBefore(predicted, write.at - write.ms);
    const claim = lastBefore(claimed, (model?.at ?? write.at) - (model?.ms ?? 0));
    if (!model || !claim) continue;
    const claimStart = claim.at - claim.ms;
    const notify = lastBefore(notified, claimStart);
    // Only rows whose batch a wake-up began (the sidecar slept): at a low rate, nearly all.
    if (!notify || notify.at < row.committed - 5) continue;
    parts.delivery!.push(notify.at - row.committed);
    parts.wake!.push(claimStart - notify.at);
    parts.claim!.push(claim.ms);
    parts.toModel!.push(model.at - model.ms - claim.at);
    parts.model!.push(model.ms);
    parts.write!.push(write.ms);
    parts.announce!.push(row.done - write.at);
  }
  const result: Record<string, number> = { rows: parts.claim!.length };
  for (const [name, values] of Object.entries(parts)) result[`${name}Ms`] = round(median(values), 3);
  return result as StreamingResult['breakdown'];
}

/** superduper alone at one rate (bench/metrics.ts compares it with and without metrics). */
export async function streamingBenchmark(rate = 100, seconds = 20, modelMs = 1, metrics = false): Promise<LatencyResult> {
  const uri = await freshDatabase('superduper_bench_streaming');
  try {
    await setUp(uri, modelMs);
    const rows = await round1(uri, 'superduper', rate, seconds, modelMs, metrics ? { SUPERDUPER_BENCH_METRICS: '1' } : {});
    return summarize(rows, rate, seconds, modelMs);
  } finally {
    await dropDatabase('superduper_bench_streaming');
  }
}

export async function streamingComparison(rates = [100, 1000], seconds = 20, modelMs = 1, rounds = 3): Promise<StreamingResult> {
  const uri = await freshDatabase('superduper_bench_streaming');
  try {
    await setUp(uri, modelMs);
    const result: StreamingResult = { modelMs, seconds, rounds, rates: [], breakdown: { rows: 0 } };
    for (const rate of rates) {
      const seen = {
        superduper: { p50Ms: [] as number[], p99Ms: [] as number[], arrived: [] as number[] },
        graphileWorker: { p50Ms: [] as number[], p99Ms: [] as number[], arrived: [] as number[] },
      };
      for (let r = 0; r < rounds; r++) {
        for (const system of ['graphileWorker', 'superduper'] as const) {
          const latency = summarize(await round1(uri, system, rate, seconds, modelMs), rate, seconds, modelMs);
          seen[system].p50Ms.push(latency.p50Ms);
          seen[system].p99Ms.push(latency.p99Ms);
          seen[system].arrived.push(round(latency.rows / (rate * seconds), 4));
          process.stderr.write(`bench: streaming: ${rate} rows/s, ${system}: p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms, ${latency.rows} of ${rate * seconds}\n`);
        }
      }
      const rounded = (s: { p50Ms: number[]; p99Ms: number[]; arrived: number[] }): SystemRounds => ({ ...s, p50: round(median(s.p50Ms), 3), p99: round(median(s.p99Ms), 3) });
      const superduper = rounded(seen.superduper);
      const graphileWorker = rounded(seen.graphileWorker);
      result.rates.push({ rate, superduper, graphileWorker, p50Ratio: round(superduper.p50 / graphileWorker.p50, 3), p99Ratio: round(superduper.p99 / graphileWorker.p99, 3) });
    }
    const file = join(tmpdir(), `superduper-timeline-${process.pid}.json`);
    try {
      const rows = await round1(uri, 'superduper', rates[0]!, seconds, modelMs, { SUPERDUPER_BENCH_TIMELINE: file });
      result.breakdown = breakdown(rows, JSON.parse(readFileSync(file, 'utf8')) as TimelineEvent[]);
    } finally {
      rmSync(file, { force: true });
    }
    return result;
  } finally {
    await dropDatabase('superduper_bench_streaming');
  }
}
