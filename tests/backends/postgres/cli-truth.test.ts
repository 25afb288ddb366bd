/**
 * The CLI never says more than is true (issue: an operator's view): a name
 * where the URI would go, numbers that are not numbers, a URI without a
 * scheme, connections that fail, a spec file that is not JSON or names the
 * wrong field, the remove hint, and an apply whose every row failed (a
 * summary and exit 1). The built CLI runs as a child process, stdin and stderr
 * not a terminal, as in a script.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
const dir = mkdtempSync(join(tmpdir(), 'superduper-cli-truth-'));
const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'superduper.js');
{
  // The built CLI must be the sources' (make test builds it; a run of vitest alone may not have).
  const root = join(import.meta.dirname, '..', '..', '..');
  const built = join(root, 'dist', 'cli.js');
  // (src/generated/ is written again by the tests' global setup: its source, sql/, is what counts.)
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.name !== 'generated')
        .map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)),
    );
  if (!existsSync(built) || statSync(built).mtimeMs < Math.max(newest(join(root, 'src')), newest(join(root, 'sql')))) {
    throw new Error('these tests run the built CLI, which is missing or older than src/ or sql/: run "make build" first (make test does)');
  }
}

/**
 * Runs the built CLI, bin/superduper.js on dist/ (make test builds it first), as
 * a user runs it; async, so a sidecar in this process keeps working.
 */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { timeout: 120_000, env: { ...process.env, SUPERDUPER_URI: '', DATABASE_URL: '', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(async () => {
  database = await createTestDatabase('cli_truth');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE docs (id int PRIMARY KEY, body text); INSERT INTO docs VALUES (1, 'hello'), (2, 'moon')`);
  await database.sql.query(`CREATE TABLE nums (id int PRIMARY KEY, n int); INSERT INTO nums SELECT g, g FROM generate_series(1, 53) g`);
  await db.apply(
    { type: 'listener', name: 'docs_embedding', table: 'docs', keys: ['body'] },
    { type: 'vector_index', name: 'docs_index', listener: 'docs_embedding' },
  );
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

describe('the CLI', () => {
  it('takes a name where the URI would go as the name when SUPERDUPER_URI gives the database', async () => {
    const env = { SUPERDUPER_URI: database.uri };
    const failures = await cli(['failures', 'docs_embedding'], env);
    expect(failures, failures.stderr).toMatchObject({ code: 0, stdout: 'no failures\n' });
    const retry = await cli(['failures', 'docs_embedding', '--retry'], env);
    expect(retry, retry.stderr).toMatchObject({ code: 0, stdout: 'queued 0 failed row(s) of docs_embedding again\n' });
    // The older order (URI, then listener) still works.
    expect((await cli(['failures', database.uri, 'docs_embedding', '--json'])).stdout.trim()).toBe('[]');
    // A name alone without SUPERDUPER_URI: said plainly, not looked up as a host.
    const alone = await cli(['status', 'docs_embedding']);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toContain('error: the argument "docs_embedding" is not a connection URI');
  });

  it('refuses an option that is not a number, saying what was expected, and starts nothing', async () => {
    const start = await cli(['start', database.uri, '--reconcile-ms', 'abc']);
    expect(start.code).toBe(1);
    expect(start.stderr).toContain(`option '--reconcile-ms <ms>' argument 'abc' is invalid. "abc" is not milliseconds (a whole number from 10 to 3600000).`);
    expect((await cli(['start', database.uri, '--health-port', '8o80'])).stderr).toContain('"8o80" is not a TCP port');
    expect((await cli(['wait', database.uri, '--timeout', 'soon'])).stderr).toContain('"soon" is not a number of seconds');
    expect((await database.sql.query(`SELECT count(*)::int AS n FROM superduper.workers`)).rows).toEqual([{ n: 0 }]);
  });

  it('refuses a URI without a scheme, and says what to check when a connection fails', async () => {
    const port = new URL(database.uri).port;
    const noScheme = await cli(['status', `localhost:${port}/postgres`]);
    expect(noScheme.stderr).toBe(
      `error: the argument "localhost:${port}/postgres" is not a connection URI\nhint: Write it with its scheme: postgres://localhost:${port}/postgres (or mongodb://localhost:${port}/postgres).\n`,
    );
    const refused = await cli(['status', 'postgres://postgres@127.0.0.1:1/postgres']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/ECONNREFUSED[\s\S]*hint: Nothing accepts connections at 127\.0\.0\.1:1: start the server/);
    const database404 = await cli(['status', `postgres://postgres@127.0.0.1:${port}/no_such_database`]);
    expect(database404.stderr).toMatch(/database "no_such_database" does not exist\nhint: Create the database first \(createdb no_such_database/);
    const role404 = await cli(['status', `postgres://no_such_role@127.0.0.1:${port}/postgres`]);
    expect(role404.stderr).toMatch(/role "no_such_role" does not exist\nhint: Create the role \(CREATE ROLE no_such_role LOGIN\)/);
    const host404 = await cli(['status', 'postgres://postgres@no-such-host.invalid:5432/postgres']);
    expect(host404.stderr).toMatch(/ENOTFOUND[\s\S]*hint: The host "no-such-host\.invalid" is not known here/);
    // The same check in the environment variable.
    const fromEnv = await cli(['status'], { SUPERDUPER_URI: `localhost:${port}/postgres` });
    expect(fromEnv.stderr).toContain(`error: SUPERDUPER_URI "localhost:${port}/postgres" is not a connection URI`);
  });

  it('says a spec file is not JSON (it was read), and that "key" takes one column', async () => {
    const broken = await cli(['apply', file('broken.json', '{"type": "listener",}'), database.uri]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/broken\.json is not valid JSON: .*position/);
    expect(broken.stderr).not.toContain('cannot read');
    const key = await cli(['apply', file('key.json', JSON.stringify({ type: 'listener', name: 'k', table: 'docs', key: ['body'] })), database.uri, '--no-wait']);
    expect(key.stderr).toBe(
      'error: superduper: listener "k": "key" names one column (a string), not ["body"]\nhint: For a list of columns write "keys": ["body"].\n',
    );
  });

  it('names the command-line option in the remove hint, not the SQL parameter', async () => {
    const removed = await cli(['remove', 'docs_embedding', database.uri]);
    expect(removed.code).toBe(1);
    expect(removed.stderr).toContain('hint: Remove those first, or run "npx superduper remove docs_embedding --cascade" to remove them too.');
    expect(removed.stderr).not.toContain('p_cascade');
  });

  it('logs lines for people with --log-format pretty (the default on a terminal), JSON lines otherwise', async () => {
    const firstLines = (args: string[]) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [BIN, 'start', database.uri, ...args], {
          env: { ...process.env, SUPERDUPER_URI: '', SUPERDUPER_LOG_FORMAT: '' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let err = '';
        const timer = setTimeout(() => reject(new Error(`no "sidecar started" line: ${err}`)), 30_000);
        child.stderr.on('data', (chunk) => {
          err += chunk;
          if (err.includes('sidecar started')) {
            clearTimeout(timer);
            child.kill('SIGTERM');
          }
        });
        child.once('exit', () => resolve(err));
      });
    const pretty = await firstLines(['--log-format', 'pretty']);
    expect(pretty).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: sidecar started$/m);
    expect(pretty).not.toContain('"level"');
    const json = await firstLines([]);
    const started = json.split('\n').find((line) => line.includes('sidecar started'))!;
    expect(JSON.parse(started)).toMatchObject({ level: 30, msg: 'sidecar started' });
    expect((await cli(['start', database.uri, '--log-format', 'yaml'])).stderr).toContain("argument 'yaml' is invalid. Allowed choices are pretty, json.");
  });

  it('ends an apply whose every row failed with a summary, the first errors and exit 1, in plain lines', async () => {
    const sidecar = await db.start({ reconcileMs: 100 });
    try {
      // The default embedder on an integer column: every row fails (once: max_attempts 1).
      const spec = file('nums.json', JSON.stringify({ type: 'listener', name: 'nums_embedding', table: 'nums', keys: ['n'], settings: { max_attempts: 1 } }));
      const applied = await cli(['apply', spec, database.uri]);
      expect(applied.code).toBe(1);
      expect(applied.stdout).toContain('listener nums_embedding: created (version 1), 53 existing row(s) to compute');
      expect(applied.stdout).toContain('nums_embedding: 0 of 53 row(s) have outputs; 53 failed. First errors:');
      expect(applied.stdout).toMatch(/ {2}row \d+: .+\n {2}row \d+: .+\n {2}row \d+: .+\n {2}all of them: npx superduper failures nums_embedding\n/);
      expect(applied.stderr).toContain('error: applied, but 53 row(s) of nums_embedding failed');
      expect(applied.stderr).toContain('hint: See them with "npx superduper failures nums_embedding"');
      // Not a terminal: plain lines, no bar redraws.
      expect(applied.stderr).toMatch(/^nums_embedding: \d+\/53 rows, \d+ in flight, 53 failed, \d+ rows\/s, /m);
      expect(applied.stderr).not.toMatch(/[\r\u001b]/);
    } finally {
      await sidecar.stop();
    }
  });
});
