/**
 * `superduper start --metrics`: a running sidecar (the CLI, a child process)
 * scraped over HTTP in Prometheus's text format. The listeners' gauges are
 * superduper.status's numbers; the counters and histograms count what this
 * sidecar did.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { startCliSidecar, type CliSidecar } from '../../helpers/processes.js';

let database: TestDatabase;
let db: Superduper;
let sidecar: CliSidecar;
let port: number;

/** The scrape, as {"name{labels}": value}. */
async function scrape(): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

beforeAll(async () => {
  database = await createTestDatabase('metrics');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE docs (id int PRIMARY KEY, body text); INSERT INTO docs SELECT g, 'document ' || g FROM generate_series(1, 20) g`);
  await database.sql.query(`CREATE TABLE nums (id int PRIMARY KEY, n int); INSERT INTO nums SELECT g, g FROM generate_series(1, 7) g`);
  await db.apply(
    { type: 'listener', name: 'docs_embedding', table: 'docs', keys: ['body'] },
    // The default embedder on an integer column: each row fails, once (max_attempts 1).
    { type: 'listener', name: 'nums_embedding', table: 'nums', keys: ['n'], settings: { max_attempts: 1 } },
  );
  sidecar = await startCliSidecar(database.uri, { args: ['--metrics', '127.0.0.1:0'] });
  const line = await eventually(async () => sidecar.logs().find((l) => l.msg === 'metrics: /metrics') as { port?: number } | undefined, 20_000, 'the metrics line');
  port = line!.port!;
  await db.waitFor(undefined, { timeoutMs: 60_000 }).catch(() => undefined);
}, 120_000);

afterAll(async () => {
  sidecar?.child.kill('SIGTERM');
  await sidecar?.exited;
  await db?.close();
  await database?.drop();
});

describe('superduper start --metrics', () => {
  it("serves the listeners' gauges with superduper.status's values", async () => {
    await eventually(async () => (await db.status()).every((s) => s.pending === 0 && s.in_flight === 0), 30_000, 'idle');
    const samples = await scrape();
    const status = await db.status({ countDone: false });
    expect(status).toHaveLength(2);
    for (const s of status) {
      const labels = `{listener="${s.listener}",version="${s.version}",state="${s.state}"}`;
      expect(samples.get(`superduper_listener_pending${labels}`)).toBe(s.pending);
      expect(samples.get(`superduper_listener_in_flight${labels}`)).toBe(s.in_flight);
      expect(samples.get(`superduper_listener_computing${labels}`)).toBe(s.computing);
      expect(samples.get(`superduper_listener_failed${labels}`)).toBe(s.failed);
      expect(samples.get(`superduper_listener_lag_seconds${labels}`)).toBe(s.lag_seconds);
    }
    expect(samples.get('superduper_listener_failed{listener="nums_embedding",version="1",state="current"}')).toBe(7);
    expect(samples.get('superduper_sidecar_up')).toBe(1);
    expect(samples.get('superduper_sidecar_state{state="idle"}')! + samples.get('superduper_sidecar_state{state="working"}')!).toBe(1);
  });

  it('counts rows computed and failed, batch sizes, and the latency of claims, model calls and writes', async () => {
    const samples = await scrape();
    expect(samples.get('superduper_rows_computed_total{listener="docs_embedding"}')).toBe(20);
    expect(samples.get('superduper_rows_failed_total{listener="nums_embedding"}')).toBe(7);
    expect(samples.get('superduper_batch_rows_sum{listener="docs_embedding"}')).toBe(20);
    expect(samples.get('superduper_model_seconds_count{model="default-embedder"}')).toBeGreaterThan(0);
    expect(samples.get('superduper_claim_seconds_count{listener="docs_embedding"}')).toBeGreaterThan(0);
    expect(samples.get('superduper_write_seconds_count{listener="docs_embedding"}')).toBeGreaterThan(0);

    // Five more rows: the counter and the gauges move with them.
    await database.sql.query(`INSERT INTO docs SELECT g, 'document ' || g FROM generate_series(21, 25) g`);
    await db.waitFor('docs_embedding', { timeoutMs: 30_000 });
    expect((await scrape()).get('superduper_rows_computed_total{listener="docs_embedding"}')).toBe(25);
  });

  it('serves the status page from the sidecar too, with --ui', async () => {
    const withUi = await startCliSidecar(database.uri, { args: ['--ui', '127.0.0.1:0'] });
    try {
      const line = await eventually(async () => withUi.logs().find((l) => l.msg === 'status page: /') as { port?: number } | undefined, 20_000, 'the status page line');
      const page = await fetch(`http://127.0.0.1:${line!.port}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>superduper status</title>');
      const overview = (await (await fetch(`http://127.0.0.1:${line!.port}/api/overview`)).json()) as { listeners: Array<{ listener: string }> };
      expect(overview.listeners.map((l) => l.listener).sort()).toEqual(['docs_embedding', 'nums_embedding']);
    } finally {
      withUi.child.kill('SIGTERM');
      await withUi.exited;
    }
  });

  it('refuses a --metrics that is not host:port, and answers 404 elsewhere', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/`);
    expect(response.status).toBe(404);
    const { execFileSync } = await import('node:child_process');
    let stderr = '';
    try {
      execFileSync(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', 'start', database.uri, '--metrics', 'localhost:port'], { stdio: 'pipe', encoding: 'utf8' });
    } catch (error) {
      stderr = (error as { stderr: string }).stderr;
    }
    expect(stderr).toContain('"localhost:port" is not host:port');
  });
});
