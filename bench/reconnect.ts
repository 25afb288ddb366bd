/**
 * Coming back after the database: a sidecar in its own process (default
 * settings) on a server of the benchmark's own, which is stopped and started
 * again, fast and immediate (a crash: recovery runs at start). Measured per
 * round: from the first moment the server accepts a connection (a probe
 * connects every 5 ms while it starts) to the first output of a row inserted
 * right then (a benchmark-only trigger on the outputs table NOTIFYs at the
 * sidecar's commit). The sidecar retries every 100 ms at first, doubling to
 * at most 1 s, each wait drawn from its upper half.
 *
 *   make bench ONLY=reconnect
 */
import { join } from 'node:path';
import pg from 'pg';
import { listener } from '../src/components/listener.js';
import { createCluster } from '../tests/helpers/cluster.js';
import { startChild, stopChild } from './lib/child.js';
import { open, percentile, round, sleep } from './lib/setup.js';

export interface ReconnectResult {
  rounds: number;
  /** ms from accepting connections to the first new output, per stop mode */
  fast: { p50Ms: number; maxMs: number; samples: number[] };
  immediate: { p50Ms: number; maxMs: number; samples: number[] };
  /** how long the server took to accept connections again after the stop, ms (for context) */
  downMs: { p50: number; max: number };
}

export async function reconnectBenchmark(rounds = 5): Promise<ReconnectResult> {
  const cluster = await createCluster('bench-reconnect');
  const db = await open(cluster.uri());
  let sidecar: Awaited<ReturnType<typeof startChild>> | undefined;
  try {
    await db.install();
    sidecar = await startChild(join(import.meta.dirname, 'sidecar-child.mjs'), [cluster.uri(), '1']);
    await db.db.query('CREATE TABLE events (id bigserial PRIMARY KEY, body text NOT NULL)');
    await db.apply(listener({ name: 'events_busy', model: 'busy', table: 'events', keys: ['body'] }));
    await db.db.query(`CREATE FUNCTION bench_done() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_notify('bench_done', NEW.id::text); RETURN NULL; END $$;
      CREATE TRIGGER bench_done AFTER INSERT OR UPDATE ON superduper.out_events_busy FOR EACH ROW EXECUTE FUNCTION bench_done()`);
    await db.close();

    const samples: Record<'fast' | 'immediate', number[]> = { fast: [], immediate: [] };
    const down: number[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['fast', 'immediate'] as const) {
        await sleep(1000); // the sidecar idle, as most of the time
        const stopped = performance.now();
        await cluster.stop(mode);
        const starting = cluster.start();
        const { client, at } = await firstConnection(cluster.uri());
        down.push(performance.now() - stopped);
        const listening = new pg.Client({ connectionString: cluster.uri() });
        await listening.connect();
        await listening.query('LISTEN bench_done');
        const output = new Promise<number>((resolve) => listening.once('notification', () => resolve(performance.now())));
        await client.query(`INSERT INTO events (body) VALUES ('after the restart')`);
        const timeout = sleep(30_000).then(() => Number.NaN);
        const outputAt = await Promise.race([output, timeout]);
        if (Number.isNaN(outputAt)) throw new Error(`no output within 30 s of the restart (${mode})`);
        samples[mode].push(outputAt - at);
        await client.end();
        await listening.end();
        await starting;
      }
    }
    const summary = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return { p50Ms: round(percentile(sorted, 50)), maxMs: round(sorted.at(-1)!), samples: values.map((v) => round(v)) };
    };
    const sortedDown = [...down].sort((a, b) => a - b);
    return {
      rounds,
      fast: summary(samples.fast),
      immediate: summary(samples.immediate),
      downMs: { p50: round(percentile(sortedDown, 50)), max: round(sortedDown.at(-1)!) },
    };
  } finally {
    if (sidecar) await stopChild(sidecar);
    await cluster.destroy();
  }
}

/** Connects as soon as the server accepts, trying every 5 ms; the moment it did. */
async function firstConnection(uri: string): Promise<{ client: pg.Client; at: number }> {
  for (;;) {
    const client = new pg.Client({ connectionString: uri });
    client.on('error', () => {});
    try {
      await client.connect();
      return { client, at: performance.now() };
    } catch {
      await sleep(5);
    }
  }
}
