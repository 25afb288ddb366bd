/**
 * Trainers (sql/functions/047_trainers.sql, src/training/,
 * src/backends/postgres/training.ts): a model fitted by a sidecar on the rows
 * of a table, each run recorded with its artifact and metrics; deployed by
 * strategy (the first run, then only better ones), pinned, rolled back; the
 * deployed run serving a listener and superduper.predict; retraining on
 * demand, on a schedule and after changed rows; bad specs and bad data refused
 * with the trainer named and what to do. Every name here is hostile (quotes,
 * spaces, upper case, a semicolon).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { schedule } from '../../src/components/schedule.js';
import { trainer, type TrainerOptions } from '../../src/components/trainer.js';
import { decodeArtifact, predictor } from '../../src/training/artifact.js';
import { conceptModel, conceptVector } from '../helpers/concepts.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
const q = <Row = Record<string, unknown>>(text: string, params: unknown[] = []) =>
  database.sql.query(text, params).then((r) => r.rows as Row[]);

const TABLE = `Customer "Data"; x`;
const NAME = `Churn "Model"; 1`;
/** The table, quoted for this test's own SQL. */
const T = `"Customer ""Data""; x"`;

/**
 * Rows whose label is a clean linear rule of two columns (so a logistic
 * regression learns it almost perfectly), plus a text column and a column of
 * noise. Seeded through the row number: every run sees the same rows.
 */
async function seed(rows: number, from = 1) {
  const client = await database.sql.connect();
  try {
    await client.query(
    `INSERT INTO ${T} (id, "Monthly Spend", age, "Plan", noise, "Churned?")
     SELECT i, (i * 37 % 100)::numeric, 18 + (i * 53 % 60), CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'free' END, (i * 7919 % 13)::float8,
            (i * 37 % 100) + 0.5 * (18 + (i * 53 % 60)) > 70
     FROM generate_series($1::int, $2::int) AS i`,
      [from, from + rows - 1],
    );
    // Counted in pg_stat_user_tables now, not when this backend next flushes
    // its statistics (seconds later): retraining after changed rows reads them.
    await client.query('SELECT pg_stat_force_next_flush()');
    await client.query('SELECT 1');
  } finally {
    client.release();
  }
}

const spec = (overrides: Partial<TrainerOptions> = {}): TrainerOptions => ({
  name: NAME,
  table: TABLE,
  features: ['Monthly Spend', 'age', { column: 'Plan', encoding: 'one_hot' }],
  target: 'Churned?',
  task: 'classification',
  seed: 7,
  ...overrides,
});

type Run = { run: number; state: string; reason: string; deployed: boolean; metrics: Record<string, number> | null; rows: number | null;
  trained_rows: number | null; held_out_rows: number | null; snapshot: string | null; seconds: number | null; fit_seconds: number | null;
  decision: string | null; error: string | null; artifact: string | null; attempts: number; claimed_by: string | null };
const runs = () =>
  q<Run>(`SELECT run, state, reason, deployed, metrics, rows::int, trained_rows::int, held_out_rows::int, snapshot, seconds, fit_seconds,
                 decision, error, artifact, attempts, claimed_by
          FROM superduper.training_runs WHERE trainer = $1 ORDER BY run`, [NAME]);
const finished = (run: number) =>
  eventually(async () => {
    const found = (await runs()).find((r) => r.run === run);
    return found && (found.state === 'done' || found.state === 'failed') ? found : undefined;
  }, 60_000, `training run ${run} to finish`).then((found) => found!);
const model = async () =>
  (await q<{ version: number; config: { run?: number }; artifact: string | null }>(`SELECT version, config, artifact FROM superduper._models WHERE name = $1`, [NAME]))[0]!;

/** The listener has one version, current, with every row's output. */
const promoted = (name: string) =>
  eventually(async () => {
    const [state] = await q<{ versions: number; pending: number }>(
      `SELECT (SELECT count(*)::int FROM superduper._listeners WHERE name = $1) AS versions,
              (SELECT coalesce(sum(pending + in_flight + coalesce(backfill_remaining, 0)), 0)::int FROM superduper.status WHERE listener = $1) AS pending`,
      [name],
    );
    return state!.versions === 1 && state!.pending === 0;
  }, 30_000, `listener ${name} rebuilt and promoted`);

beforeEach(async () => {
  database = await createTestDatabase('training');
  db = await connectTest(database);
  await q(`CREATE TABLE ${T} (id int PRIMARY KEY, "Monthly Spend" numeric, age int, "Plan" text, noise float8, "Churned?" boolean)`);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

describe('trainers: bad specs', () => {
  it('refuses each with the trainer named and what to do, and applies nothing', async () => {
    await seed(20);
    const bad = (overrides: Partial<TrainerOptions> | Record<string, unknown>) => db.apply(trainer(spec(overrides as Partial<TrainerOptions>)));
    await expect(bad({ features: ['Plan'] })).rejects.toThrow(`trainer "${NAME}": feature "Plan" is text, and a model needs numbers`);
    await expect(bad({ features: ['nope'] })).rejects.toThrow(/has no column nope/);
    await expect(bad({ target: 'nope' })).rejects.toThrow(/has no target column nope/);
    await expect(bad({ task: 'regression', hyperparameters: {} })).rejects.toThrow(`regression predicts numbers, and target "Churned?" is boolean`);
    await expect(bad({ task: 'clustering', hyperparameters: { k: 2 } })).rejects.toThrow(/clustering has no target/);
    await expect(bad({ task: 'clustering', target: undefined, hyperparameters: {} })).rejects.toThrow(/kmeans needs hyperparameter\(s\) k/);
    await expect(bad({ hyperparameters: { step: 10 } })).rejects.toThrow(/logistic_regression has no hyperparameter 'step'/);
    await expect(bad({ hyperparameters: { epochs: 2.5 } })).rejects.toThrow(/hyperparameter epochs must be a whole number from 1/);
    await expect(bad({ hyperparameters: { learning_rate: 0 } })).rejects.toThrow(/hyperparameter learning_rate must be a number from above 0 to 10, not 0/);
    await expect(bad({ algorithm: 'neural_network', hyperparameters: { hidden_units: 0 } })).rejects.toThrow(/hyperparameter hidden_units must be a whole number from 1 to 1024/);
    await expect(bad({ validation: { holdout: 0.9 } })).rejects.toThrow(/"holdout" is the share of rows held out/);
    await expect(bad({ validation: { folds: 1 } })).rejects.toThrow(/"folds" must be a whole number from 2 to 20/);
    await expect(bad({ deploy: { metric: 'r2' } })).rejects.toThrow(/classification runs report accuracy, f1, roc_auc, not "r2"/);
    await expect(bad({ deploy: { strategy: 'pinned' } })).rejects.toThrow(/a pinned deploy names its run/);
    await expect(bad({ features: ['Churned?', 'age'] })).rejects.toThrow(/target "Churned\?" is also a feature/);
    await expect(bad({ filter: `true; DROP TABLE ${T}` })).rejects.toThrow(/invalid filter/);
    await expect(bad({ table: 'no such table' })).rejects.toThrow(/table or view "no such table" does not exist/);
    await expect(db.apply({ type: 'model', name: 'hand made', runtime: 'trained', output: { type: 'text' } })).rejects.toThrow(/models of runtime "trained" are made by trainers/);
    expect(await q(`SELECT (SELECT count(*)::int FROM superduper.trainers) AS trainers, (SELECT count(*)::int FROM superduper._models WHERE runtime = 'trained') AS models`)).toEqual([
      { trainers: 0, models: 0 },
    ]);
    // A schedule whose cron expression does not parse, to retrain by.
    await db.apply(trainer(spec()));
    expect(() => schedule({ name: 'nightly', cron: '0 25 * * *', train: NAME })).toThrow(/the cron expression "0 25 \* \* \*" does not parse/);
    await expect(db.apply({ type: 'schedule', name: 'nightly', cron: 'at night', action: { train: NAME } })).rejects.toThrow(/"cron" must be a cron expression/);
    await expect(db.apply({ type: 'schedule', name: 'nightly', cron: '0 3 * * *', action: { train: 'nobody' } })).rejects.toThrow(/no trainer named 'nobody' to train/);
    // The trained model is the trainer's: not applied, not removed by hand.
    await expect(db.apply({ type: 'model', name: NAME, runtime: 'onnx', output: { type: 'text' } })).rejects.toThrow(`model "${NAME}": it is trained by trainer "${NAME}"`);
    await expect(db.remove(NAME + 'x')).rejects.toThrow(/no .* named/);
  });

  it('fails a run whose rows cannot be fitted, saying why: NULL targets, one class, no rows', async () => {
    await seed(40);
    await db.start({ reconcileMs: 100 });
    await q(`UPDATE ${T} SET "Churned?" = NULL WHERE id = 5`);
    await db.apply(trainer(spec()));
    const nulls = await finished(1);
    expect(nulls.state).toBe('failed');
    expect(nulls.error).toMatch(new RegExp(`^trainer "${NAME.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": target "Churned\\?" is NULL`));
    expect(nulls.error).toMatch(/filter/);

    await db.apply(trainer(spec({ filter: `"Churned?" IS NOT NULL AND NOT "Churned?"` })));
    const oneClass = await finished(2);
    expect(oneClass).toMatchObject({ state: 'failed' });
    expect(oneClass.error).toMatch(/one class only/);

    await db.apply(trainer(spec({ filter: 'age > 1000' })));
    const empty = await finished(3);
    expect(empty).toMatchObject({ state: 'failed' });
    expect(empty.error).toMatch(/no rows/);

    // A NULL feature, and nothing deployed through all of it.
    await q(`UPDATE ${T} SET noise = NULL WHERE id = 7`);
    await db.apply(trainer(spec({ filter: `"Churned?" IS NOT NULL`, features: ['Monthly Spend', 'age', 'noise'] })));
    const nullFeature = await finished(4);
    expect(nullFeature.state).toBe('failed');
    expect(nullFeature.error).toMatch(/"noise".*NULL/);
    expect((await model()).artifact).toBeNull();
    await expect(db.predict(NAME, { age: 30 })).rejects.toThrow(`model "${NAME}" has no trained version deployed yet`);
  });
});

describe('trainers: runs, deploys, rollbacks', () => {
  it('fits, records and deploys the first run; the listener and predict use it; the same seed gives the same model; a run no better is kept', async () => {
    await seed(300);
    // The listener is declared before any run is deployed: it computes once one is.
    await db.apply(trainer(spec()), listener({ name: 'churn risk', model: NAME, table: TABLE, keys: ['Monthly Spend', 'age', 'Plan'] }));
    expect((await runs())[0]).toMatchObject({ run: 1, state: 'queued', reason: 'applied' });
    await db.start({ reconcileMs: 100 });
    const first = await finished(1);
    expect(first).toMatchObject({ state: 'done', deployed: true, rows: 300, trained_rows: 240, held_out_rows: 60, error: null });
    expect(first.decision).toMatch(/^deployed: the first finished run \(f1 /);
    expect(Object.keys(first.metrics!).sort()).toEqual(['accuracy', 'f1', 'roc_auc']);
    expect(first.metrics!.accuracy).toBeGreaterThan(0.85);
    expect(first.snapshot).toMatch(/^\d+:\d+:/);
    expect(first.seconds).toBeGreaterThanOrEqual(first.fit_seconds!);
    // The artifact is stored like any model file, and is the model's now.
    const stored = (await q<{ bytes: Buffer }>(`SELECT bytes FROM superduper._artifacts WHERE sha256 = $1`, [first.artifact]))[0]!;
    expect(await model()).toMatchObject({ config: { trainer: NAME, run: 1 }, artifact: first.artifact });

    // The listener's outputs are the artifact's predictions, row by row, once
    // the version computing with the deployed run replaced the one that waited.
    await promoted('churn risk');
    const predict = predictor(decodeArtifact(new Uint8Array(stored.bytes)));
    const rows = await q<{ 'Monthly Spend': string; age: number; Plan: string; output: boolean }>(
      `SELECT s."Monthly Spend", s.age, s."Plan", o.output FROM ${T} s JOIN ${await db.outputsTable('churn risk')} o USING (id) ORDER BY id`,
    );
    expect(rows).toHaveLength(300);
    const expected = predict(rows.map((r) => ({ 'Monthly Spend': Number(r['Monthly Spend']), age: r.age, Plan: r.Plan })));
    expect(rows.map((r) => r.output)).toEqual(expected);
    expect(await db.predict(NAME, { 'Monthly Spend': 99, age: 70, Plan: 'pro' })).toBe(true);
    expect(await db.predict(NAME, { 'Monthly Spend': 0, age: 18, Plan: 'free' })).toBe(false);

    // On demand: returns at once; the same rows and seed give the same bytes,
    // and a run no better than the deployed one is kept, not deployed.
    const again = await db.train(NAME);
    expect(again).toBe(2);
    const second = await finished(2);
    expect(second).toMatchObject({ state: 'done', reason: 'on_demand', deployed: false, artifact: first.artifact });
    expect(second.decision).toMatch(/^kept, not deployed: f1 .* no better than deployed run 1's/);
    // Another seed: another split, another model.
    await db.apply(trainer(spec({ seed: 8 })));
    const third = await finished(3);
    expect(third.artifact).not.toBe(first.artifact);
  });

  it('deploys by strategy, pins, rolls back step by step, and switches the listener through a rebuild', async () => {
    await seed(200);
    await db.apply(trainer(spec({ deploy: { strategy: 'most_recent', gate: false } })), listener({ name: 'churn risk', model: NAME, table: TABLE, keys: ['Monthly Spend', 'age', 'Plan'] }));
    await db.start({ reconcileMs: 100 });
    await finished(1);
    await promoted('churn risk');
    // Runs with other hyperparameters: each the most recent, deployed (no gate).
    await db.apply(trainer(spec({ deploy: { strategy: 'most_recent', gate: false }, hyperparameters: { epochs: 1, learning_rate: 0.001 } })));
    expect(await finished(2)).toMatchObject({ deployed: true });
    await db.apply(trainer(spec({ deploy: { strategy: 'most_recent', gate: false }, hyperparameters: { epochs: 3, learning_rate: 0.01 } })));
    expect(await finished(3)).toMatchObject({ deployed: true });
    await promoted('churn risk');
    const versionAt3 = (await model()).version;

    // Rollback: run 2 again, then run 1; then nothing earlier.
    const back = await db.rollback(NAME);
    expect(back).toMatchObject({ action: 'rolled back', from: 3, run: 2, model_version: versionAt3 + 1, rebuilding: ['churn risk'] });
    // The listener's current outputs serve while the new version builds.
    const serving = await q<{ n: number }>(`SELECT count(*)::int AS n FROM ${await db.outputsTable('churn risk')}`);
    expect(serving[0]!.n).toBe(200);
    expect(await db.rollback(NAME)).toMatchObject({ from: 2, run: 1 });
    await expect(db.rollback(NAME)).rejects.toThrow(`trainer "${NAME}" has no earlier deployment to roll back to (run 1 is deployed)`);
    // A rollback pins: a new run is kept, not deployed.
    await db.train(NAME);
    expect(await finished(4)).toMatchObject({ deployed: false, decision: expect.stringMatching(/run 1 is pinned/) });

    // By strategy: the best f1 among the runs, which unpins.
    const best = await q<{ run: number }>(
      `SELECT run FROM superduper.training_runs WHERE trainer = $1 AND state = 'done' ORDER BY (metrics ->> 'f1')::float8 DESC, run DESC LIMIT 1`,
      [NAME],
    );
    const deployed = await db.deploy(NAME, { strategy: 'best_score' });
    expect(deployed.run).toBe(best[0]!.run);
    // (Run 1 is deployed now: picking it again deploys nothing new.)
    const bestDeployment = best[0]!.run === 1 ? [] : [[best[0]!.run, 'best_score']];
    expect(await db.deploy(NAME, { strategy: 'best_score' })).toMatchObject({ action: 'unchanged' });
    expect(await db.deploy(NAME, { strategy: 'most_recent' })).toMatchObject({ run: 4 });
    // Pinned, from SQL as well.
    const [pinned] = await q<{ result: { run: number; action: string } }>(`SELECT superduper.deploy($1, 'pinned', 2) AS result`, [NAME]);
    expect(pinned!.result).toMatchObject({ run: 2, action: 'deployed' });
    await expect(db.deploy(NAME, { strategy: 'pinned', run: 99 })).rejects.toThrow(`trainer "${NAME}" has no finished run 99`);
    await expect(db.deploy('nobody')).rejects.toThrow(/no trainer \(or model of a trainer\) named 'nobody'/);

    // The listener ends on run 2's predictions, and the history is kept.
    await promoted('churn risk');
    const run2 = (await runs()).find((r) => r.run === 2)!;
    const bytes = (await q<{ bytes: Buffer }>(`SELECT bytes FROM superduper._artifacts WHERE sha256 = $1`, [run2.artifact]))[0]!.bytes;
    const rows = await q<{ 'Monthly Spend': string; age: number; Plan: string; output: boolean }>(
      `SELECT s."Monthly Spend", s.age, s."Plan", o.output FROM ${T} s JOIN ${await db.outputsTable('churn risk')} o USING (id) ORDER BY id`,
    );
    expect(rows.map((r) => r.output)).toEqual(predictor(decodeArtifact(new Uint8Array(bytes)))(rows.map((r) => ({ 'Monthly Spend': Number(r['Monthly Spend']), age: r.age, Plan: r.Plan }))));
    const history = await q<{ run: number; strategy: string; rolled_back: boolean }>(
      `SELECT run, strategy, rolled_back_at IS NOT NULL AS rolled_back FROM superduper.training_deployments WHERE trainer = $1 ORDER BY deployed_at`,
      [NAME],
    );
    expect(history.map((h) => [h.run, h.strategy])).toEqual([
      [1, 'most_recent'], [2, 'most_recent'], [3, 'most_recent'], [2, 'rollback'], [1, 'rollback'], ...bestDeployment, [4, 'most_recent'], [2, 'pinned'],
    ]);
  });

  it('keeps a worse retrain without deploying it, behind the gate', async () => {
    await seed(200);
    await db.apply(trainer(spec({ deploy: { strategy: 'most_recent' } })));
    await db.start({ reconcileMs: 100 });
    const good = await finished(1);
    // Labels turned to noise: the next fit scores worse on the held-out rows.
    await q(`UPDATE ${T} SET "Churned?" = (id * 7919 % 2 = 0)`);
    await db.train(NAME);
    const worse = await finished(2);
    expect(worse.state).toBe('done');
    expect(worse.metrics!.f1).toBeLessThan(good.metrics!.f1!);
    expect(worse.deployed).toBe(false);
    expect(worse.decision).toMatch(/^kept, not deployed: f1 .* worse than deployed run 1's/);
    expect((await model()).config.run).toBe(1);
  });
});

describe('trainers: retraining', () => {
  it('retrains after N changed rows of its table, and on a schedule', async () => {
    await seed(100);
    await db.apply(trainer(spec({ retrain: { afterRows: 50 } })));
    // Three sidecars: each due time, and each run, is still taken by one.
    await Promise.all([db.start({ reconcileMs: 100 }), db.start({ reconcileMs: 100 }), db.start({ reconcileMs: 100 })]);
    await finished(1);
    await seed(60, 101);
    // The statistics the count comes from are flushed by backends within seconds.
    const changed = await eventually(async () => (await runs()).find((r) => r.reason === 'changed_rows'), 40_000, 'a run queued by changed rows').then((found) => found!);
    expect(changed.run).toBe(2);
    expect((await finished(2)).rows).toBe(160);

    // Each firing as it ends, kept past the schedule's removal.
    await q(`CREATE TABLE fired (due_at timestamptz PRIMARY KEY, state text, result jsonb)`);
    await q(`CREATE FUNCTION keep_firing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               INSERT INTO public.fired VALUES (NEW.due_at, NEW.state, NEW.result); RETURN NULL; END $$`);
    await q(`CREATE TRIGGER keep_firing AFTER UPDATE OF state ON superduper._schedule_runs FOR EACH ROW WHEN (NEW.state <> 'running') EXECUTE FUNCTION keep_firing()`);
    await db.apply(schedule({ name: 'retrain "nightly"', cron: '* * * * * *', train: NAME }));
    const scheduled = await eventually(async () => (await runs()).find((r) => r.reason === 'schedule'), 20_000, 'a run queued by the schedule').then((found) => found!);
    await finished(scheduled.run);
    await db.remove('retrain "nightly"');
    const firings = await q<{ state: string; result: { run: number } }>(`SELECT state, result FROM fired`);
    expect(firings.length).toBeGreaterThan(0);
    for (const firing of firings) expect(firing).toMatchObject({ state: 'done', result: { run: expect.any(Number) } });
    // Every run fitted once, by one sidecar, runs numbered without gaps.
    const all = await runs();
    expect(all.map((r) => r.run)).toEqual(all.map((_, i) => i + 1));
    for (const run of all.filter((r) => r.state === 'done')) expect(run.attempts).toBe(1);
  });

  it('refuses a removal that would orphan a listener or schedule, and removes all with cascade', async () => {
    await seed(50);
    await db.apply(trainer(spec()), listener({ name: 'churn risk', model: NAME, table: TABLE, keys: ['Monthly Spend', 'age', 'Plan'] }));
    await db.apply(schedule({ name: 'nightly', cron: '0 3 * * *', train: NAME }));
    await expect(db.remove(NAME)).rejects.toThrow(`trainer "${NAME}" trains model "${NAME}", used by churn risk`);
    await expect(db.remove(NAME, { cascade: true })).resolves.toBeDefined();
    expect(await q(`SELECT (SELECT count(*)::int FROM superduper._trainers) AS t, (SELECT count(*)::int FROM superduper._training_runs) AS r,
                           (SELECT count(*)::int FROM superduper._models WHERE runtime = 'trained') AS m, (SELECT count(*)::int FROM superduper._schedules) AS s,
                           (SELECT count(*)::int FROM superduper._listeners) AS l`)).toEqual([{ t: 0, r: 0, m: 0, s: 0, l: 0 }]);
  });
});

describe('trainers: tasks and features', () => {
  it('fits a regression, scored by R² and MAE, with k folds', async () => {
    await q(`CREATE TABLE houses ("Floor Area" float8, rooms int, id int PRIMARY KEY, price float8)`);
    // price = 3·area + 10·rooms + 5 exactly: a linear regression finds it.
    await q(`INSERT INTO houses SELECT i * 7 % 90 + 20, 1 + i % 5, i, 3 * (i * 7 % 90 + 20) + 10 * (1 + i % 5) + 5 FROM generate_series(1, 120) AS i`);
    await db.apply(trainer({ name: 'price', table: 'houses', features: ['Floor Area', 'rooms'], target: 'price', task: 'regression', validation: { folds: 4 } }));
    await db.start({ reconcileMs: 100 });
    const [done] = await eventually(async () => {
      const found = await q<{ state: string; metrics: Record<string, number>; trained_rows: number; held_out_rows: number; error: string | null }>(
        `SELECT state, metrics, trained_rows::int, held_out_rows::int, error FROM superduper.training_runs WHERE trainer = 'price' AND state IN ('done', 'failed')`,
      );
      return found.length ? found : undefined;
    }, 30_000, 'the regression fitted').then((found) => found!);
    expect(done).toMatchObject({ state: 'done', error: null, trained_rows: 120, held_out_rows: 120 });
    expect(done!.metrics.r2).toBeCloseTo(1, 6);
    expect(done!.metrics.mae).toBeCloseTo(0, 4);
    expect(await db.predict('price', { 'Floor Area': 50, rooms: 2 })).toBeCloseTo(175, 4);
  });

  it('clusters, scored by the silhouette, and predicts the cluster of a point', async () => {
    await q(`CREATE TABLE points (id int PRIMARY KEY, x float8, y float8)`);
    // Two tight groups far apart.
    await q(`INSERT INTO points SELECT i, CASE WHEN i % 2 = 0 THEN 0 ELSE 100 END + (i % 7) * 0.1, CASE WHEN i % 2 = 0 THEN 0 ELSE 100 END + (i % 5) * 0.1 FROM generate_series(1, 200) AS i`);
    await db.apply(trainer({ name: 'groups', table: 'points', features: ['x', 'y'], task: 'clustering', hyperparameters: { k: 2 }, seed: 3 }));
    await db.start({ reconcileMs: 100 });
    const [done] = await eventually(async () => {
      const found = await q<{ state: string; metrics: Record<string, number>; error: string | null }>(
        `SELECT state, metrics, error FROM superduper.training_runs WHERE trainer = 'groups' AND state IN ('done', 'failed')`,
      );
      return found.length ? found : undefined;
    }, 30_000, 'the clustering fitted').then((found) => found!);
    expect(done).toMatchObject({ state: 'done', error: null });
    expect(done!.metrics.silhouette).toBeGreaterThan(0.95);
    const near = await db.predict('groups', { x: 0.2, y: 0.1 });
    const far = await db.predict('groups', { x: 100.3, y: 100.2 });
    expect([near, far].sort()).toEqual([0, 1]);
  });

  it("trains a classifier head on a listener's embeddings, which a listener on those embeddings then computes with", async () => {
    await q(`CREATE TABLE "Posts" (id int PRIMARY KEY, body text, "Topic" text)`);
    await q(`INSERT INTO "Posts" SELECT i, (ARRAY['cat kitten meow', 'car engine drive', 'stock market shares'])[1 + i % 3] || ' ' || i,
                                         (ARRAY['pets', 'vehicles', 'finance'])[1 + i % 3] FROM generate_series(1, 90) AS i`);
    await db.apply(conceptModel(), listener({ name: 'post concepts', model: 'concepts', table: 'Posts', keys: ['body'] }));
    await db.start({ reconcileMs: 100 });
    await db.waitFor('post concepts');
    await db.apply(
      trainer({ name: 'topics', table: 'Posts', features: [{ listener: 'post concepts' }], target: 'Topic', task: 'classification' }),
      listener({ name: 'topic guess', model: 'topics', schema: 'superduper', table: 'out_post concepts', keys: ['output'] }),
    );
    const [done] = await eventually(async () => {
      const found = await q<{ state: string; metrics: Record<string, number>; rows: number; error: string | null }>(
        `SELECT state, metrics, rows::int, error FROM superduper.training_runs WHERE trainer = 'topics' AND state IN ('done', 'failed')`,
      );
      return found.length ? found : undefined;
    }, 30_000, 'the head fitted').then((found) => found!);
    expect(done).toMatchObject({ state: 'done', rows: 90, error: null });
    expect(done!.metrics.accuracy).toBe(1);
    expect(done!.metrics.roc_auc).toBeCloseTo(1, 6);
    await promoted('topic guess');
    const guesses = await q<{ topic: string; guess: string }>(
      `SELECT p."Topic" AS topic, g.output AS guess FROM "Posts" p JOIN ${await db.outputsTable('topic guess')} g USING (id)`,
    );
    expect(guesses).toHaveLength(90);
    for (const row of guesses) expect(row.guess).toBe(row.topic);
    // The bare embedding, as superduper.predict takes it (its unused
    // dimensions differ from the stored float32 ones in the last digits).
    expect(await db.predict('topics', conceptVector('cat kitten meow'))).toBe('pets');
    expect(await db.predict('topics', conceptVector('stock market'))).toBe('finance');
  });
});
