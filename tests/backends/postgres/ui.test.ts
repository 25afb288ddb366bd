/**
 * The status page (`superduper ui`, src/ui/), in a real browser: Debian's
 * Chromium driven by playwright-core (installed by scripts/test-clients.sh, which
 * `make test` runs). The page is served by the CLI in a child process, as a
 * user starts it; the browser reads listeners, lineage and failures that the
 * test makes, retries as a role that may, sees a role that may not told so,
 * and searches. With SUPERDUPER_UPDATE_SCREENSHOTS=1 its screenshots replace
 * those in docs/images/ (docs/operations.md shows them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { application } from '../../../src/components/application.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { conceptModel, conceptVector } from '../../helpers/concepts.js';

let database: TestDatabase;
let db: Superduper;
let browser: Browser;
const servers: ChildProcess[] = [];
/** A role of this file's own (roles are the whole server's), that may read but not retry. */
const READER = `ui_reader_${randomUUID().slice(0, 8)}`;
/** The docs' screenshots are made again with SUPERDUPER_UPDATE_SCREENSHOTS=1; otherwise they go to a temporary folder. */
const images =
  process.env.SUPERDUPER_UPDATE_SCREENSHOTS === '1' ? join(import.meta.dirname, '..', '..', '..', 'docs', 'images') : mkdtempSync(join(tmpdir(), 'superduper-ui-'));

/** `superduper ui <uri> --port 0` in a child process; resolves with its URL. */
async function startUi(uri: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', 'ui', uri, '--port', '0'], {
    env: { ...process.env, SUPERDUPER_URI: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.push(child);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no status page: ${output}`)), 30_000);
    child.stdout!.on('data', () => {
      const match = /status page: (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`ui exited with ${code}: ${output}`)));
  });
}

/** The listeners table's row for a listener, as the page shows it. */
/** A model that fails every row while refusing (a broken API, say), and computes once it is fixed. */
let refusing = true;
const picky = functionModel({
  name: 'picky',
  output: { type: 'integer' },
  version: 'picky',
  predict: (inputs: string[]) => {
    if (refusing) throw new Error('the picky service is down (HTTP 503)');
    return inputs.map((text) => text.length);
  },
});

const listenerRow = (page: Page, name: string) => page.locator('#listeners tbody tr', { has: page.locator('td:first-child', { hasText: name }) });

beforeAll(async () => {
  database = await createTestDatabase('ui');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE "My Docs" (id int PRIMARY KEY, body text); CREATE TABLE notes (id int PRIMARY KEY, body text)`);
  await database.sql.query(`INSERT INTO "My Docs" VALUES (1, 'my cat is a lazy feline'), (2, 'the puppy will bark'), (3, 'a pizza recipe')`);
  await database.sql.query(`INSERT INTO notes VALUES (1, 'one'), (2, 'two')`);
  await db.apply(
    application({
      name: 'docs search',
      components: [
        conceptModel(),
        listener({ name: 'Docs "concepts"', model: 'concepts', table: 'My Docs', keys: ['body'] }),
        vectorIndex({ name: 'docs_index', listener: 'Docs "concepts"' }),
      ],
    }),
    picky,
    listener({ name: 'notes_picky', model: 'picky', table: 'notes', keys: ['body'], settings: { max_attempts: 1 } }),
  );
  await db.start({ reconcileMs: 100 });
  await db.waitFor(undefined, { timeoutMs: 60_000 }).catch(() => undefined);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
  mkdirSync(images, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  for (const child of servers) child.kill('SIGTERM');
  await db?.close();
  await database?.drop();
  // Its database is gone, and with it everything granted to it there.
  const admin = new pg.Client({ connectionString: database.uri.replace(/\/[^/?]*(\?|$)/, '/postgres$1') });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${READER}`).finally(() => admin.end());
});

describe('superduper ui, in Chromium', () => {
  it('shows the listeners with their numbers, updating live, and the lineage', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(await startUi(database.uri));
    const docs = listenerRow(page, 'Docs "concepts"');
    await expect.poll(async () => (await docs.locator('td').allTextContents()).slice(0, 3)).toEqual(['Docs "concepts"', '1', 'current']);
    await expect.poll(async () => (await docs.locator('td').nth(8).textContent())?.trim()).toBe('3'); // done
    await expect.poll(async () => (await listenerRow(page, 'notes_picky').locator('td').nth(7).textContent())?.trim()).toBe('2'); // failed

    // Live: a new row is counted without reloading.
    await database.sql.query(`INSERT INTO "My Docs" VALUES (4, 'a fast car with a big engine')`);
    await expect.poll(async () => (await docs.locator('td').nth(8).textContent())?.trim(), { timeout: 15_000 }).toBe('4');

    const lineage = await page.locator('#lineage li').allTextContents();
    expect(lineage).toContain('table public."My Docs" → listener Docs "concepts"   [application docs search]');
    expect(lineage).toContain('listener Docs "concepts" → vector index docs_index   [application docs search]');
    expect(lineage).toContain('table public.notes → listener notes_picky');
    await page.screenshot({ path: join(images, 'ui-status.png'), fullPage: true });
    await page.close();
  });

  it('lists failures with their error text, and retries them for a role that may', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(await startUi(database.uri));
    const rows = page.locator('#failures tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.first().locator('td.error').textContent()).toContain('the picky service is down (HTTP 503)');
    // The service is back: retry from the page.
    refusing = false;
    await page.locator('#failures button', { hasText: 'retry notes_picky' }).first().click();
    await expect.poll(() => page.locator('#failures-note').textContent(), { timeout: 15_000 }).toMatch(/queued 2 row\(s\) of notes_picky again|no failures/);
    await db.waitFor('notes_picky', { timeoutMs: 30_000 });
    await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(0);
    await page.close();
  });

  it('tells a role that may not retry so, and offers no button', async () => {
    await database.sql.query(`CREATE ROLE ${READER} LOGIN; GRANT USAGE ON SCHEMA superduper TO ${READER}; GRANT SELECT ON ALL TABLES IN SCHEMA superduper TO ${READER}`);
    refusing = true;
    await database.sql.query(`INSERT INTO notes VALUES (3, 'three')`);
    await eventually(async () => (await db.failures('notes_picky')).length === 1, 20_000, 'a failure');
    const url = new URL(database.uri);
    url.username = READER;
    const page = await browser.newPage();
    await page.goto(await startUi(url.toString()));
    await expect.poll(() => page.locator('#failures tbody tr').count()).toBe(1);
    expect(await page.locator('#failures-note').textContent()).toBe('this role may not retry failed rows');
    expect(await page.locator('#failures button').count()).toBe(0);
    await page.close();
  });

  it('searches a vector index and shows the rows, and refuses a retry without the page\'s token', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const base = await startUi(database.uri);
    await page.goto(base);
    await expect.poll(() => page.locator('#index option').allTextContents()).toEqual(['docs_index']);
    // The concept model is a function of this test process: query by a text its sidecar embeds.
    await page.fill('#query', 'kitten cat');
    await page.fill('#k', '2');
    await page.click('#search button');
    await expect.poll(() => page.locator('#hits tbody tr').count(), { timeout: 15_000 }).toBe(2);
    expect(await page.locator('#hits tbody tr').first().locator('pre.row').textContent()).toContain('my cat is a lazy feline');
    expect(conceptVector('kitten cat')[0]).toBeGreaterThan(0.9);
    await page.screenshot({ path: join(images, 'ui-search.png'), fullPage: true });

    const forged = await fetch(`${base}api/retry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ listener: 'notes_picky' }) });
    expect(forged.status).toBe(403);
    await page.close();
  });
});
