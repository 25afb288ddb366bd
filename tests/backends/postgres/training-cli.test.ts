/**
 * The CLI's training commands: `superduper train`, `deploy` (by strategy, or a
 * pinned run), `rollback` and `training-runs`, against a trainer whose runs a
 * sidecar of this test fits; bad input refused with what to do.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { trainer } from '../../../src/components/trainer.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
const q = <Row = Record<string, unknown>>(text: string, params: unknown[] = []) => database.sql.query(text, params).then((r) => r.rows as Row[]);
const NAME = `Churn "CLI"; 1`;

/** Runs the CLI from source; its exit code and output. */
const cli = (...args: string[]) => {
  try {
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SUPERDUPER_URI: '' },
    });
    return { code: 0, stdout, stderr: '' };
  } catch (error) {
    const e = error as { status: number; stdout: string; stderr: string };
    return { code: e.status, stdout: e.stdout, stderr: e.stderr };
  }
};
const finished = (run: number) =>
  eventually(async () => {
    const [found] = await q<{ state: string }>(`SELECT state FROM superduper.training_runs WHERE trainer = $1 AND run = $2`, [NAME, run]);
    return found && found.state !== 'queued' && found.state !== 'running';
  }, 60_000, `run ${run} to finish`);

beforeAll(async () => {
  database = await createTestDatabase('training_cli');
  db = await connectTest(database);
  await q(`CREATE TABLE customers (id int PRIMARY KEY, spend float8, age int, churned boolean)`);
  await q(`INSERT INTO customers SELECT i, i * 37 % 100, 18 + i * 53 % 60, (i * 37 % 100) + 0.5 * (18 + i * 53 % 60) > 70 FROM generate_series(1, 200) AS i`);
  await db.apply(trainer({ name: NAME, table: 'customers', features: ['spend', 'age'], target: 'churned', task: 'classification' }));
  await db.start({ reconcileMs: 100 });
  await finished(1);
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

describe('superduper train, deploy, rollback, training-runs', () => {
  it('queues a run, lists runs, deploys by strategy and by run, and rolls back', async () => {
    const train = cli('train', NAME, database.uri);
    expect(train).toMatchObject({ code: 0, stdout: `queued run 2 of ${NAME}; a running sidecar fits it (see: npx superduper training-runs ${NAME})\n` });
    await finished(2);

    const listed = cli('training-runs', NAME, database.uri);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/trainer\s+run\s+state\s+deployed\s+reason\s+rows\s+metrics\s+seconds\s+note/);
    expect(listed.stdout).toMatch(/deployed: the first finished run/);
    expect(listed.stdout).toMatch(/kept, not deployed: f1 .* no better than deployed run 1's/);
    const json = JSON.parse(cli('training-runs', database.uri, NAME, '--json').stdout) as Array<{ run: number; deployed: boolean; metrics: Record<string, number> }>;
    expect(json.map((r) => [r.run, r.deployed])).toEqual([[1, true], [2, false]]);
    expect(Object.keys(json[0]!.metrics).sort()).toEqual(['accuracy', 'f1', 'roc_auc']);

    expect(cli('deploy', NAME, database.uri, '--run', '2')).toMatchObject({
      code: 0,
      stdout: `${NAME}: deployed to run 2 as model ${NAME} version 3 (pinned)\n`,
    });
    expect(cli('deploy', NAME, database.uri, '--strategy', 'most_recent')).toMatchObject({ code: 0, stdout: `${NAME}: run 2 is deployed already (most_recent)\n` });
    const back = JSON.parse(cli('rollback', NAME, database.uri, '--json').stdout) as { action: string; run: number; from: number };
    expect(back).toMatchObject({ action: 'rolled back', run: 1, from: 2 });
    expect((await q<{ run: number }>(`SELECT (config ->> 'run')::int AS run FROM superduper._models WHERE name = $1`, [NAME]))[0]!.run).toBe(1);
  });

  it('refuses bad input with what to do, and changes nothing', async () => {
    const before = await q(`SELECT run, strategy FROM superduper.training_deployments ORDER BY deployed_at`);
    expect(cli('deploy', NAME, database.uri, '--strategy', 'best')).toMatchObject({ code: 1 });
    expect(cli('deploy', NAME, database.uri, '--strategy', 'best').stderr).toMatch(/Allowed choices are best_score, most_recent, pinned/);
    expect(cli('deploy', NAME, database.uri, '--run', 'two').stderr).toMatch(/"two" is not a run number/);
    expect(cli('deploy', NAME, database.uri, '--run', '9')).toMatchObject({ code: 1, stderr: expect.stringContaining(`trainer "${NAME}" has no finished run 9`) });
    expect(cli('deploy', NAME, database.uri, '--strategy', 'best_score', '--metric', 'r2').stderr).toMatch(/classification runs report accuracy, f1, roc_auc, not 'r2'/);
    expect(cli('train', 'nobody', database.uri)).toMatchObject({ code: 1, stderr: expect.stringContaining(`no trainer (or model of a trainer) named 'nobody'`) });
    expect(cli('rollback', 'nobody', database.uri).code).toBe(1);
    expect(await q(`SELECT run, strategy FROM superduper.training_deployments ORDER BY deployed_at`)).toEqual(before);
  });
});
