import { classifyDatabaseError, describeError } from '../../errors.js';
import { encodeArtifact } from '../../training/artifact.js';
import { RowEncoder, estimateBytes } from '../../training/encode.js';
import { TrainingError } from '../../training/errors.js';
import { startFitWorker } from '../../training/fit-in-worker.js';
import type { FeatureLayout, TrainingSpec } from '../../training/types.js';
import type { TrainingOptions, TrainingOutcome } from '../backend.js';
import type { Queryable, SqlDriver } from './sql-driver.js';

/** What superduper._training_plan gives a run: the query and how each column encodes (sql/functions/047_trainers.sql). */
interface TrainingPlan {
  trainer: string;
  task: TrainingSpec['task'];
  algorithm: TrainingSpec['algorithm'];
  hyperparameters: Record<string, number>;
  seed: number;
  validation: TrainingSpec['validation'];
  features: Array<{ name: string; alias: string; kind: 'number' | 'boolean' | 'category' | 'vector'; dim?: number }>;
  /** null for clustering. */
  target: string | null;
  output: { type: string };
  query: string;
  /** For messages: the table or view, and the filter. */
  source: string;
  filter: string | null;
}

/** Rows fetched per round trip from the training query's cursor: each batch is encoded and dropped before the next. */
const FETCH_ROWS = 10_000;

/** One-hot encoding of more distinct values than this is refused: it is an identifier, not a category. */
const MAX_CATEGORIES = 1_000;

/**
 * Claims one training run (sql/functions/047_trainers.sql), reads its rows in
 * one snapshot, fits in a worker thread and records the result; returns what
 * happened, or undefined when no run was waiting. A run whose data or spec is
 * at fault fails with the reason; one interrupted by the database going away
 * is left running, for this or another sidecar to take over when its lease
 * runs out.
 */
export async function runTraining(db: SqlDriver, options: TrainingOptions): Promise<TrainingOutcome | undefined> {
  const claimed = await db.query<{ trainer: string; run: number; attempts: number; plan: TrainingPlan }>(
    'SELECT * FROM superduper._training_claim($1, make_interval(secs => $2))',
    [options.sidecarId, options.leaseSeconds],
  );
  const claim = claimed.rows[0];
  if (!claim) return undefined;
  const { trainer, run, plan } = claim;
  const lost = new AbortController();
  const stop = AbortSignal.any([lost.signal, ...(options.signal ? [options.signal] : [])]);
  // The lease is extended while the run reads and fits; once it is not (taken
  // over after this sidecar was presumed dead), the fit stops.
  const keepLease = setInterval(() => {
    db.query<{ mine: boolean }>('SELECT superduper._training_extend($1, $2, $3, make_interval(secs => $4)) AS mine', [
      trainer,
      run,
      options.sidecarId,
      options.leaseSeconds,
    ])
      .then((result) => {
        if (!result.rows[0]?.mine) lost.abort(new Error(`training run ${run} of trainer "${trainer}" was taken over by another sidecar`));
      })
      .catch(() => undefined); // the database is away: the lease holds meanwhile, or runs out and the run is taken over
  }, (options.leaseSeconds * 1000) / 3);
  keepLease.unref();
  const started = performance.now();
  // Started before the read, so the libraries load while the rows arrive.
  const worker = startFitWorker({ memoryMb: options.memoryMb, signal: stop });
  try {
    const read = await readRows(db, plan, options.memoryMb);
    stop.throwIfAborted();
    const spec = specOf(plan, read.features);
    const fitted = await worker.fit(spec, read.data);
    const result = {
      output: plan.output,
      metrics: fitted.metrics,
      rows: read.data.rows,
      trained_rows: fitted.trainedRows,
      held_out_rows: fitted.heldOutRows,
      snapshot: read.snapshot,
      fit_seconds: fitted.fitMs / 1000,
    };
    const finished = await db.query<{ decision: { deployed: boolean; decision: string } | null }>(
      'SELECT superduper._training_finish($1, $2, $3, $4, $5) AS decision',
      [trainer, run, options.sidecarId, Buffer.from(encodeArtifact(fitted.artifact)), JSON.stringify(result)],
      { timeoutMs: 0 },
    );
    const decision = finished.rows[0]?.decision;
    if (!decision) return { trainer, run, state: 'taken over', seconds: (performance.now() - started) / 1000 };
    return { trainer, run, state: 'done', deployed: decision.deployed, decision: decision.decision, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    if (lost.signal.aborted) return { trainer, run, state: 'taken over', seconds: (performance.now() - started) / 1000 };
    if (options.signal?.aborted) throw error; // this sidecar is stopping: the run is handed over (superduper._worker_stop)
    if (!(error instanceof TrainingError) && classifyDatabaseError(error) !== 'statement') throw error;
    const reason = error instanceof TrainingError ? error.message : `trainer "${trainer}": ${describeError(error)}`;
    await db.query('SELECT superduper._training_fail($1, $2, $3, $4)', [trainer, run, options.sidecarId, reason]);
    return { trainer, run, state: 'failed', error: reason, seconds: (performance.now() - started) / 1000 };
  } finally {
    clearInterval(keepLease);
    worker.terminate(); // ended already when it fitted; not when the read failed
  }
}

/** The training spec src/training/ fits by, from the run's plan and the layout its rows gave. */
function specOf(plan: TrainingPlan, features: FeatureLayout[]): TrainingSpec {
  return {
    trainer: plan.trainer,
    task: plan.task,
    algorithm: plan.algorithm,
    features,
    ...(plan.target == null ? {} : { target: plan.target }),
    hyperparameters: plan.hyperparameters,
    seed: plan.seed,
    validation: plan.validation,
  };
}

/**
 * The run's rows, read in one REPEATABLE READ snapshot (so the count, the
 * categories and the rows agree) through a cursor, each batch encoded into
 * the feature matrix before the next is fetched. Refused before reading when
 * the matrix would not fit the training memory limit.
 */
async function readRows(db: SqlDriver, plan: TrainingPlan, memoryMb: number) {
  return db.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    // The filter is evaluated as a listener's is: with only pg_catalog to resolve names.
    await tx.query("SET LOCAL search_path = pg_catalog, pg_temp");
    const snapshot = (await tx.query<{ snapshot: string }>('SELECT pg_current_snapshot()::text AS snapshot')).rows[0]!.snapshot;
    const count = Number((await tx.query<{ n: string }>(`SELECT count(*) AS n FROM (${plan.query}) AS q`, [], { timeoutMs: 0 })).rows[0]!.n);
    if (count === 0) {
      const where = plan.filter === null ? '' : ` with filter ${JSON.stringify(plan.filter)}`;
      throw new TrainingError(plan.trainer, `the training query returned no rows (${plan.source}${where}); add rows, or loosen "filter"`);
    }
    const features = await layout(tx, plan);
    const width = features.reduce((sum, f) => sum + (f.kind === 'category' ? f.categories.length : f.kind === 'vector' ? f.dim : 1), 0);
    const needed = estimateBytes(count, width, plan.algorithm);
    if (needed > memoryMb * 1024 * 1024) {
      throw new TrainingError(
        plan.trainer,
        `${count.toLocaleString('en')} rows × ${width} features need about ${Math.ceil(needed / 1024 / 1024)} MB to fit, ` +
          `over the training memory limit of ${memoryMb} MB (SUPERDUPER_TRAINING_MEMORY_MB); raise it, or narrow the training query with "filter"`,
      );
    }
    const encoder = new RowEncoder(specOf(plan, features), { expectedRows: count });
    await tx.query(`DECLARE superduper_training NO SCROLL CURSOR FOR ${plan.query}`, [], { timeoutMs: 0 });
    for (;;) {
      const batch = await tx.query<Record<string, unknown>>(`FETCH FORWARD ${FETCH_ROWS} FROM superduper_training`, [], { timeoutMs: 0 });
      for (const row of batch.rows) {
        const named: Record<string, unknown> = {};
        for (const feature of plan.features) named[feature.name] = row[feature.alias];
        if (plan.target !== null) named[plan.target] = row.target;
        encoder.push(named);
      }
      if (batch.rows.length < FETCH_ROWS) break;
    }
    return { snapshot, features, data: encoder.finish() };
  });
}

/** Each feature's layout: a one-hot feature's categories are the distinct values its rows hold. */
async function layout(tx: Queryable, plan: TrainingPlan): Promise<FeatureLayout[]> {
  const features: FeatureLayout[] = [];
  for (const feature of plan.features) {
    if (feature.kind === 'category') {
      const values = await tx.query<{ value: string }>(
        `SELECT DISTINCT ${feature.alias}::text AS value FROM (${plan.query}) AS q WHERE ${feature.alias} IS NOT NULL ORDER BY 1 LIMIT ${MAX_CATEGORIES + 1}`,
        [],
        { timeoutMs: 0 },
      );
      if (values.rows.length > MAX_CATEGORIES) {
        throw new TrainingError(
          plan.trainer,
          `feature "${feature.name}" has more than ${MAX_CATEGORIES} distinct values, too many to one-hot encode; ` +
            'group them into fewer categories in a view, or leave the column out',
        );
      }
      features.push({ name: feature.name, kind: 'category', categories: values.rows.map((r) => r.value) });
    } else if (feature.kind === 'vector') {
      features.push({ name: feature.name, kind: 'vector', dim: feature.dim! });
    } else {
      features.push({ name: feature.name, kind: feature.kind });
    }
  }
  return features;
}
