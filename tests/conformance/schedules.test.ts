/**
 * Schedules (sql/functions/046_schedules.sql, src/schedules/): a cron
 * expression and an action (refresh a listener), fired by sidecars, each due
 * time once however many sidecars run; missed firings skipped or run once; a
 * firing whose sidecar stopped answering taken over, then failed; bad specs
 * refused. The action is observed through the change log a refresh writes to
 * (a trigger of this test's own counts the rows it queues).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { schedule } from '../../src/components/schedule.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
const q = <Row = Record<string, unknown>>(text: string, params: unknown[] = []) =>
  database.sql.query(text, params).then((r) => r.rows as Row[]);

const NAME = `Nightly "refresh"; 1`;
const length = functionModel({ name: 'length', output: { type: 'integer' }, version: 'length', predict: (inputs: string[]) => inputs.map((t) => t.length) });
const runs = (name = NAME) =>
  q<{ due_at: Date; state: string; result: Record<string, unknown> | null; attempts: number; error: string | null }>(
    `SELECT due_at, state, result, attempts, error FROM superduper.schedule_runs WHERE schedule = $1 ORDER BY due_at`,
    [name],
  );
/** Rows refreshes queued for the listener (the test's trigger on the change log counts them). */
const queued = async () => (await q<{ n: number }>(`SELECT count(*)::int AS n FROM refresh_log`))[0]!.n;

beforeEach(async () => {
  database = await createTestDatabase('schedules');
  db = await connectTest(database);
  await q(`CREATE TABLE "My Docs" (id int PRIMARY KEY, body text); INSERT INTO "My Docs" VALUES (1, 'one'), (2, 'two')`);
  await db.apply(length, listener({ name: 'docs_length', model: 'length', table: 'My Docs', keys: ['body'] }));
  await q(`CREATE TABLE refresh_log (at timestamptz DEFAULT clock_timestamp());
           CREATE FUNCTION log_refresh() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.refresh_log DEFAULT VALUES; RETURN NULL; END $$;
           CREATE TRIGGER log_refresh AFTER INSERT ON superduper._changes FOR EACH ROW EXECUTE FUNCTION log_refresh()`);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

describe('schedules', () => {
  it('refuses a bad schedule, naming it and what is expected, and applies nothing', async () => {
    const bad = (spec: Record<string, unknown>) => db.apply({ type: 'schedule', name: NAME, cron: '0 3 * * *', action: { refresh: 'docs_length' }, ...spec });
    await expect(bad({ cron: 'every night' })).rejects.toThrow(`schedule "${NAME}": "cron" must be a cron expression of 5 fields`);
    await expect(bad({ cron: '0 3 * *' })).rejects.toThrow(/"cron" must be a cron expression/);
    await expect(bad({ timezone: 'Mars/Olympus' })).rejects.toThrow(`schedule "${NAME}": unknown time zone 'Mars/Olympus'`);
    await expect(bad({ missed: 'never' })).rejects.toThrow(/"missed" must be "skip" or "catch_up_once"/);
    await expect(bad({ action: { refresh: 'no_such_listener' } })).rejects.toThrow(/no listener named 'no_such_listener' to refresh/);
    await expect(bad({ action: { train: 'x' } })).rejects.toThrow(/no trainer named .x. to train/);
    await expect(bad({ action: { rebuild: 'x' } })).rejects.toThrow(/"action" must be \{"refresh": "<listener>"\} or \{"train": "<trainer>"\}/);
    await expect(bad({ crontab: '0 3 * * *' })).rejects.toThrow(/unknown field\(s\) 'crontab'/);
    // The sidecars' parser, at once, from TypeScript.
    expect(() => schedule({ name: NAME, cron: '61 * * * *', refresh: 'docs_length' })).toThrow(`schedule "${NAME}": the cron expression "61 * * * *" does not parse`);
    expect(await q(`SELECT count(*)::int AS n FROM superduper.schedules`)).toEqual([{ n: 0 }]);
  });

  it('fires each due time exactly once with three sidecars, on consecutive due times, and shows the last and the next', async () => {
    await Promise.all([db.start({ reconcileMs: 100 }), db.start({ reconcileMs: 100 }), db.start({ reconcileMs: 100 })]);
    await db.waitFor('docs_length');
    const before = await queued();
    await db.apply(schedule({ name: NAME, cron: '* * * * * *', refresh: 'docs_length' }));
    await eventually(async () => (await runs()).filter((r) => r.state === 'done').length >= 4, 20_000, 'four firings');
    // Stop firing without forgetting the runs: a due time far away.
    await db.apply(schedule({ name: NAME, cron: '0 0 1 1 *', refresh: 'docs_length' }));
    await eventually(async () => (await runs()).every((r) => r.state !== 'running'), 20_000, 'no firing under way');
    const all = await runs();
    const done = all.filter((r) => r.state === 'done');
    expect(all.every((r) => r.state === 'done')).toBe(true);
    for (let i = 1; i < done.length; i++) expect(done[i]!.due_at.getTime() - done[i - 1]!.due_at.getTime()).toBe(1000);
    for (const run of done) expect(run.result).toEqual({ queued: 2 });
    // The action ran once per firing: two rows queued by each, none twice.
    expect((await queued()) - before).toBe(2 * done.length);
    const [view] = await q(`SELECT name, cron, last_state, last_result, next_at FROM superduper.schedules`);
    expect(view).toMatchObject({ name: NAME, cron: '0 0 1 1 *', last_state: 'done', last_result: { queued: 2 } });
    await eventually(async () => (await q(`SELECT next_at FROM superduper.schedules`))[0]!.next_at !== null, 10_000, 'the next due time');
    expect(new Date((await q<{ next_at: Date }>(`SELECT next_at FROM superduper.schedules`))[0]!.next_at).getUTCMonth()).toBe(0);
  });

  it.each(['skip', 'catch_up_once'] as const)('handles firings missed while no sidecar ran by its policy: %s', async (missed) => {
    let sidecar = await db.start({ reconcileMs: 100 });
    await db.waitFor('docs_length');
    await db.apply(schedule({ name: NAME, cron: '* * * * * *', refresh: 'docs_length', missed, graceSeconds: 1 }));
    await eventually(async () => (await runs()).length >= 1, 20_000, 'a first firing');
    await sidecar.stop();
    await new Promise((resolve) => setTimeout(resolve, 3500)); // three or more firings missed
    const seen = (await runs()).length;
    const before = await queued();
    sidecar = await db.start({ reconcileMs: 100 });
    const late = await eventually(
      async () => (await runs()).slice(seen).find((r) => (r.result?.missed as number) >= 2 && r.state !== 'running'),
      20_000,
      'the missed firings handled',
    );
    await db.apply(schedule({ name: NAME, cron: '0 0 1 1 *', refresh: 'docs_length', missed, graceSeconds: 1 }));
    expect(late!.result).toMatchObject({ policy: missed });
    if (missed === 'skip') {
      expect(late!.state).toBe('skipped');
    } else {
      expect(late).toMatchObject({ state: 'done', result: { queued: 2 } });
    }
    // One run stands for all the missed due times: none of them ran on its own.
    const after = (await runs()).slice(seen);
    expect(after.filter((r) => r.due_at < late!.due_at)).toEqual([]);
    await sidecar.stop();
    expect((await queued()) - before).toBe(2 * after.filter((r) => r.state === 'done').length);
  });

  it('takes over a firing whose sidecar stopped answering, and fails it after three', async () => {
    await db.apply({ type: 'schedule', name: NAME, cron: '0 0 1 1 *', action: { refresh: 'docs_length' } });
    // Two firings a sidecar claimed and never finished (it was killed): leases run out.
    await q(`INSERT INTO superduper._schedule_runs (schedule, due_at, state, claimed_by, lease_until, attempts)
             VALUES ($1, date_trunc('second', now()) - interval '20 s', 'running', 'gone:1', now() - interval '1 s', 1),
                    ($1, date_trunc('second', now()) - interval '10 s', 'running', 'gone:2', now() - interval '1 s', 3)`, [NAME]);
    const [first, second] = (await runs()).map((r) => r.due_at);
    // Due again now (as the sidecar that claimed them would have left next_at).
    await q(`UPDATE superduper._schedules SET next_at = $2 WHERE name = $1`, [NAME, first]);
    await db.start({ reconcileMs: 100 });
    await eventually(async () => (await runs())[0]!.state === 'done', 20_000, 'the first taken over');
    expect((await runs())[0]).toMatchObject({ state: 'done', attempts: 2, result: { queued: 2 } });
    await q(`UPDATE superduper._schedules SET next_at = $2 WHERE name = $1`, [NAME, second]);
    await eventually(async () => (await runs())[1]!.state !== 'running', 20_000, 'the second given up');
    expect((await runs())[1]).toMatchObject({ state: 'failed', attempts: 4, error: 'its sidecar stopped answering 3 times (last: gone:2)' });
  });

  it('shows why the sidecars cannot read an expression that has the shape of one', async () => {
    await db.apply({ type: 'schedule', name: NAME, cron: '99 * * * *', action: { refresh: 'docs_length' } });
    await db.start({ reconcileMs: 100 });
    const row = await eventually(
      async () => {
        const rows = await q<{ error: string | null; next_at: Date | null }>(`SELECT error, next_at FROM superduper.schedules`);
        return rows[0]?.error ? rows[0] : undefined;
      },
      20_000,
      'the error',
    );
    expect(row).toMatchObject({ next_at: null, error: expect.stringMatching(/^the cron expression "99 \* \* \* \*" \(time zone UTC\) does not parse: /) });
  });
});
