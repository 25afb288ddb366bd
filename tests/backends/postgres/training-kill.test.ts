/**
 * A sidecar killed (kill -9) while it fits a training run
 * (sql/functions/047_trainers.sql, src/backends/postgres/training.ts): its
 * lease stops being extended; once the other sidecars presume it dead, one of
 * them takes the run over and fits it from the start, reading the rows again.
 * The run is fitted by one sidecar at a time and recorded once. A run taken
 * over three times fails, saying so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { trainer } from '../../../src/components/trainer.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { startSidecarProcess } from '../../helpers/processes.js';

let database: TestDatabase;
let db: Superduper;
const q = <Row = Record<string, unknown>>(text: string, params: unknown[] = []) =>
  database.sql.query(text, params).then((r) => r.rows as Row[]);
const run = async (n = 1) =>
  (await q<{ state: string; attempts: number; claimed_by: string | null; rows: number | null; error: string | null; lease_left: number | null }>(
    `SELECT state, attempts, claimed_by, rows::int, error, extract(epoch FROM lease_until - now())::float8 AS lease_left
     FROM superduper._training_runs WHERE trainer = 'churn' AND run = $1`,
    [n],
  ))[0];

beforeAll(async () => {
  database = await createTestDatabase('training_kill');
  db = await connectTest(database);
  await q(`CREATE TABLE customers (id int PRIMARY KEY, spend float8, age int, churned boolean)`);
  await q(`INSERT INTO customers SELECT i, i * 37 % 100, 18 + i * 53 % 60, (i * 37 % 100) + 0.5 * (18 + i * 53 % 60) > 70 FROM generate_series(1, 2000) AS i`);
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

describe('a sidecar killed while it fits a training run', () => {
  it('is taken over by another sidecar, which fits the run once, from its rows read again', async () => {
    // Many epochs over 2,000 rows: the fit lasts long enough for the kill to land mid-fit.
    await db.apply(trainer({ name: 'churn', table: 'customers', features: ['spend', 'age'], target: 'churned', task: 'classification', hyperparameters: { epochs: 10_000 } }));
    const doomed = await startSidecarProcess(database.uri, { env: { SD_HEARTBEAT_MS: '300', SD_DEAD_AFTER_MS: '2000' } });
    await eventually(async () => (await run())?.claimed_by === doomed.id, 20_000, 'the run claimed by the doomed sidecar');
    // Its rows read (2,000 take milliseconds), it fits, extending its lease.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await run()).toMatchObject({ state: 'running', attempts: 1, claimed_by: doomed.id });
    expect((await run())!.lease_left).toBeGreaterThan(0);
    doomed.child.kill('SIGKILL');
    await doomed.exited;

    // Fewer rows for the second attempt, so that it ends soon: it reads them anew.
    await q(`DELETE FROM customers WHERE id > 40`);
    const survivor = await db.start({ reconcileMs: 100, heartbeatMs: 300, deadAfterMs: 2000 });
    const finished = await eventually(async () => {
      const found = await run();
      return found?.state === 'done' || found?.state === 'failed' ? found : undefined;
    }, 60_000, 'the run taken over and finished');
    expect(finished).toMatchObject({ state: 'done', attempts: 2, claimed_by: survivor.id, rows: 40, error: null });
    expect(await q(`SELECT count(*)::int AS n FROM superduper._training_runs`)).toEqual([{ n: 1 }]);
    expect(await q(`SELECT run, strategy FROM superduper.training_deployments`)).toEqual([{ run: 1, strategy: 'best_score' }]);
    await survivor.stop();
  });

  it('fails a run whose sidecars stopped answering three times, saying so, and never hands it a fourth', async () => {
    await db.train('churn');
    await q(`UPDATE superduper._training_runs SET state = 'running', claimed_by = 'gone-3', attempts = 3, lease_until = now() - interval '1 second', started_at = now()
             WHERE trainer = 'churn' AND run = 2`);
    expect(await q(`SELECT * FROM superduper._training_claim('someone', interval '1 minute')`)).toEqual([]);
    expect(await run(2)).toMatchObject({
      state: 'failed',
      error: `its sidecar stopped answering 3 times (last: gone-3); superduper.train('churn') runs it again`,
    });
  });
});
