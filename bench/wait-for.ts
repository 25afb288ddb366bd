/**
 * The cost of superduper.wait_for() when nothing is pending (the common case
 * of a read-your-writes check), against `SELECT 1` on the same connection in
 * the same run: each is run 2000 times, one after another, and timed at the
 * client. Measured three times, no sidecar running: on a quiet database; with
 * 50,000 changes queued for another listener and the change log vacuumed (as
 * running sidecars keep it); and with those 50,000 changes still in the change
 * log, undrained, which has no index (on purpose: see the insert trigger), so
 * every look reads it.
 *
 *   make bench ONLY=wait-for
 */
import pg from 'pg';
import { listener } from '../src/components/listener.js';
import { functionModel } from '../src/models/function-runtime.js';
import { dropDatabase, freshDatabase, open, percentile, round } from './lib/setup.js';

interface Timing {
  waitP50Us: number;
  select1P50Us: number;
  ratio: number;
}

export interface WaitForResult {
  calls: number;
  quiet: Timing;
  otherListenerQueued: Timing & { queued: number };
  otherListenerLogged: Timing & { logged: number };
}

export async function waitForBenchmark(calls = 2000): Promise<WaitForResult> {
  const uri = await freshDatabase('superduper_bench_wait_for');
  const db = await open(uri);
  const client = new pg.Client({ connectionString: uri });
  try {
    const model = functionModel({ name: 'len', output: { type: 'float' }, predict: (xs: string[]) => xs.map((x) => x.length) });
    await db.db.query('CREATE TABLE mine (id int PRIMARY KEY, body text); CREATE TABLE theirs (id int PRIMARY KEY, body text)');
    await db.apply(model, listener({ name: 'mine_len', model: 'len', table: 'mine', keys: ['body'] }));
    await client.connect();
    const time = async (sql: string) => {
      const samples: number[] = [];
      for (let i = 0; i < 200; i++) await client.query(sql); // warm up: plans cached
      for (let i = 0; i < calls; i++) {
        const started = performance.now();
        await client.query(sql);
        samples.push((performance.now() - started) * 1000);
      }
      return percentile(samples.sort((a, b) => a - b), 50);
    };
    const measure = async () => {
      const waitP50Us = await time(`SELECT * FROM superduper.wait_for('mine_len')`);
      const select1P50Us = await time('SELECT 1');
      return { waitP50Us: round(waitP50Us, 1), select1P50Us: round(select1P50Us, 1), ratio: round(waitP50Us / select1P50Us) };
    };
    const quiet = await measure();
    await db.apply(listener({ name: 'theirs_len', model: 'len', table: 'theirs', keys: ['body'] }));
    await db.db.query(`INSERT INTO theirs SELECT g, 'row ' || g FROM generate_series(1, 50000) g`);
    const logged = await measure();
    // Into the queue, as a sidecar's drain would, and the log vacuumed, as sidecars do every second.
    await db.db.query('SELECT superduper._drain()');
    await db.db.query('VACUUM superduper._changes');
    const queued = await measure();
    return { calls, quiet, otherListenerQueued: { queued: 50_000, ...queued }, otherListenerLogged: { logged: 50_000, ...logged } };
  } finally {
    await client.end().catch(() => {});
    await db.close();
    await dropDatabase('superduper_bench_wait_for');
  }
}
