import type { DeployOptions, DeployResult, TrainingRunRow } from '../../backends/types.js';
import { openDatabase } from '../context.js';
import { table } from '../format.js';

/** `superduper train <trainer>`: queues a run; a sidecar fits it. */
export async function trainCommand(trainer: string, uri: string | undefined): Promise<void> {
  const db = await openDatabase(uri);
  try {
    const run = await db.train(trainer);
    process.stdout.write(`queued run ${run} of ${trainer}; a running sidecar fits it (see: npx superduper training-runs ${trainer})\n`);
  } finally {
    await db.close();
  }
}

/** `superduper deploy <trainer>`: puts a run in service by strategy, or pins one. */
export async function deployCommand(trainer: string, uri: string | undefined, options: DeployOptions & { json: boolean }): Promise<void> {
  const db = await openDatabase(uri);
  try {
    const { json, ...choice } = options;
    printDeploy(await db.deploy(trainer, choice), json);
  } finally {
    await db.close();
  }
}

/** `superduper rollback <trainer>`: the run deployed before the current one, again (and pinned). */
export async function rollbackCommand(trainer: string, uri: string | undefined, options: { json: boolean }): Promise<void> {
  const db = await openDatabase(uri);
  try {
    printDeploy(await db.rollback(trainer), options.json);
  } finally {
    await db.close();
  }
}

function printDeploy(result: DeployResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  if (result.action === 'unchanged') {
    process.stdout.write(`${result.trainer}: run ${result.run} is deployed already (${result.strategy})\n`);
    return;
  }
  const rebuilding = result.rebuilding?.length ? `; rebuilding ${result.rebuilding.join(', ')} (their current outputs serve until then)` : '';
  const from = result.action === 'rolled back' ? ` from run ${result.from ?? 'none'}` : '';
  process.stdout.write(`${result.trainer}: ${result.action}${from} to run ${result.run} as model ${result.model} version ${result.model_version} (${result.strategy})${rebuilding}\n`);
}

/** `superduper training-runs [trainer]`: superduper.training_runs. */
export async function trainingRunsCommand(trainer: string | undefined, uri: string | undefined, options: { json: boolean }): Promise<void> {
  const db = await openDatabase(uri);
  try {
    const runs = await db.trainingRuns(trainer);
    if (options.json) {
      process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
      return;
    }
    if (runs.length === 0) {
      process.stdout.write('no training runs\n');
      return;
    }
    process.stdout.write(`${table(runs.map(displayed), ['trainer', 'run', 'state', 'deployed', 'reason', 'rows', 'metrics', 'seconds', 'note'])}\n`);
  } finally {
    await db.close();
  }
}

function displayed(run: TrainingRunRow): Record<string, unknown> {
  const metrics = Object.entries(run.metrics ?? {})
    .map(([name, value]) => `${name} ${Number(value).toFixed(4)}`)
    .join(', ');
  return {
    ...run,
    deployed: run.deployed ? 'yes' : '',
    rows: run.rows ?? '',
    metrics,
    seconds: run.seconds === null ? '' : run.seconds.toFixed(1),
    note: run.error ?? run.decision ?? '',
  };
}
