import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres } from '../../../src/backends/postgres/driver.js';
import { connect } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { codeVersion, migrations } from '../../../src/generated/sql.js';
import { install } from '../../../src/install.js';
import { createLogger } from '../../../src/logger.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { adminUri, uriFor } from '../../helpers/uris.js';

const created: string[] = [];

async function emptyDatabase(label: string): Promise<string> {
  const name = `sdtest_install_${label}_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUri() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  created.push(name);
  return uriFor(name);
}

afterAll(async () => {
  const admin = new pg.Client({ connectionString: adminUri() });
  await admin.connect();
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

/** Tables, columns, functions and views of schema superduper, for comparing installs. */
async function schemaShape(uri: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: uri });
  await client.connect();
  try {
    const result = await client.query(`
      SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) AS item
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE c.relnamespace = 'superduper'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
      UNION ALL
      SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'superduper'::regnamespace
      UNION ALL
      SELECT 'index ' || indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
      WHERE c.relnamespace = 'superduper'::regnamespace
      ORDER BY 1`);
    return result.rows.map((r) => r.item);
  } finally {
    await client.end();
  }
}

describe('superduper install', () => {
  it('installs into an empty database, creating pgvector and dblink, then is a no-op', async () => {
    const uri = await emptyDatabase('fresh');
    const db = await connectPostgres(uri);
    try {
      const first = await install(db);
      expect(first).toMatchObject({ applied: migrations.map((m) => m.version), codeVersion, via: 'installer', warnings: [] });
      expect(first.extensions.vector).toMatch(/^0\.\d+\.\d+$/);
      expect(first.extensions.dblink).not.toBeNull();
      const second = await install(db);
      expect(second.applied).toEqual([]);
      const ledger = await db.query(`SELECT version, name FROM superduper._migrations ORDER BY version`);
      expect(ledger.rows).toEqual(migrations.map((m) => ({ version: m.version, name: m.name })));
    } finally {
      await db.close();
    }
  });

  it('two installers at once: one applies each migration, the other waits and finds it done', async () => {
    const uri = await emptyDatabase('race');
    const [a, b] = await Promise.all([connectPostgres(uri), connectPostgres(uri)]);
    try {
      const [ra, rb] = await Promise.all([install(a), install(b)]);
      expect([...ra.applied, ...rb.applied].sort((x, y) => x - y)).toEqual(migrations.map((m) => m.version));
      const ledger = await a.query(`SELECT count(*)::int AS n FROM superduper._migrations`);
      expect(ledger.rows[0]!.n).toBe(migrations.length);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('the CLI installs, applies a JSON file, reports status and removes', async () => {
    const uri = await emptyDatabase('cli');
    const cli = (...args: string[]) =>
      execFileSync(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', ...args], { encoding: 'utf8', env: { ...process.env, SUPERDUPER_URI: '' } });
    const every = migrations.map((m) => m.version).join(', ');
    expect(cli('install', uri)).toMatch(new RegExp(`^superduper \\S+ installed \\(applied migration\\(s\\) ${every}; via installer\\); pgvector 0\\.\\d+\\.\\d+, dblink 1\\.\\d+`));
    expect(cli('install', uri)).toMatch(/already up to date/);
    const client = new pg.Client({ connectionString: uri });
    await client.connect();
    await client.query(`CREATE TABLE t (id int PRIMARY KEY, body text); INSERT INTO t VALUES (1, 'a'), (2, 'b')`);
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'sd-cli-'));
    const { linearModel } = await import('../../../src/models/onnx-builder.js');
    writeFileSync(join(dir, 'model.onnx'), linearModel({ inputDim: 1, outputDim: 2 }));
    await client.query(`CREATE TABLE nums (id int PRIMARY KEY, x real); INSERT INTO nums VALUES (1, 1), (2, 2)`);
    writeFileSync(
      join(dir, 'spec.json'),
      JSON.stringify([
        { type: 'model', name: 'lin', runtime: 'onnx', file: 'model.onnx', output: { type: 'vector', dim: 2 } },
        { type: 'listener', name: 'nums_lin', model: 'lin', table: 'nums', keys: ['x'] },
      ]),
    );
    const applied = cli('apply', join(dir, 'spec.json'), uri);
    expect(applied).toContain('model lin: created (version 1)');
    expect(applied).toContain('listener nums_lin: created (version 1), 2 existing row(s) to compute');
    expect(applied).toContain('no sidecar is running');
    expect(cli('apply', join(dir, 'spec.json'), uri)).toContain('listener nums_lin: unchanged');
    const stored = await client.query(`SELECT length(bytes) AS n FROM superduper._artifacts`);
    expect(stored.rows[0].n).toBeGreaterThan(0);
    expect(cli('status', uri)).toMatch(/nums_lin\s+1\s+current\s+lin\s+public\.nums\s+2\s+0\s+0\s+0/);
    expect(JSON.parse(cli('status', uri, '--json'))[0]).toMatchObject({ listener: 'nums_lin', pending: 2 });
    expect(cli('remove', 'nums_lin', uri)).toContain('listener nums_lin: removed (outputs dropped)');

    // With a sidecar running, apply shows a progress bar until the backfill is done.
    await client.query(`INSERT INTO nums SELECT g, g FROM generate_series(3, 5000) g`);
    const sidecar = await connect(uri, { logger: createLogger('silent') });
    await sidecar.start();
    try {
      // Not spawnSync: the sidecar runs in this process and must keep running.
      const { execFile } = await import('node:child_process');
      const run = await new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', 'apply', join(dir, 'spec.json'), uri], (error, stdout, stderr) =>
          resolve({ status: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
        );
      });
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('listener nums_lin: created (version 1), 5000 existing row(s) to compute');
      expect(run.stderr).toMatch(/nums_lin: 5000\/5000 rows, 0 in flight, 0 failed/);
      const done = await client.query(`SELECT count(*)::int AS n FROM superduper.out_nums_lin`);
      expect(done.rows[0].n).toBe(5000);
    } finally {
      await sidecar.close();
    }
    await client.end();
  });

  it('the CLI says what is wrong, with a hint, and exits 1', async () => {
    const uri = await emptyDatabase('cli_errors');
    const run = (...args: string[]) => {
      try {
        execFileSync(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', ...args], { encoding: 'utf8', stdio: 'pipe' });
        return { code: 0, stderr: '' };
      } catch (error) {
        const e = error as { status: number; stderr: string };
        return { code: e.status, stderr: e.stderr };
      }
    };
    expect(run('status', uri)).toEqual({ code: 1, stderr: 'error: superduper is not installed in this database\nhint: Run "npx superduper install <uri>" first.\n' });
    const bad = run('install', 'postgres://postgres@127.0.0.1:1/nothing');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: connect ECONNREFUSED 127\.0\.0\.1:1/);
  });
});

describe('CREATE EXTENSION superduper', () => {
  // "make test" installs the extension files (make -C extension install) when it
  // may write to PostgreSQL's share directory, as in CI; the test needs the
  // installed script to be the one built from this checkout.
  const extensionInstalled = (() => {
    try {
      const share = execFileSync('/usr/lib/postgresql/15/bin/pg_config', ['--sharedir'], { encoding: 'utf8' }).trim();
      const file = `superduper--${codeVersion}.sql`;
      return readFileSync(`${share}/extension/${file}`, 'utf8') === readFileSync(`extension/${file}`, 'utf8');
    } catch {
      return false;
    }
  })();

  it.runIf(extensionInstalled)('gives the same schema as the installer, and works the same', async () => {
    const viaExtension = await emptyDatabase('ext');
    const viaInstaller = await emptyDatabase('inst');
    const client = new pg.Client({ connectionString: viaExtension });
    await client.connect();
    // dblink is optional for the extension (as for the installer, which creates it
    // when it is available): created first, model calls from SQL use it.
    await client.query('CREATE EXTENSION dblink; CREATE EXTENSION superduper CASCADE');
    await client.end();
    const db = await connect(viaExtension, { logger: createLogger('silent') });
    const installer = await connectPostgres(viaInstaller);
    try {
      expect(await db.install()).toMatchObject({ via: 'extension', applied: [] });
      await install(installer);
      expect(await schemaShape(viaExtension)).toEqual(await schemaShape(viaInstaller));
      await db.db.query(`CREATE TABLE t (id int PRIMARY KEY, body text); INSERT INTO t VALUES (1, 'x')`);
      await db.apply(
        functionModel({ name: 'len', output: { type: 'float' }, predict: (ins: string[]) => ins.map((s) => s.length) }),
        listener({ name: 'tl', model: 'len', table: 't', keys: ['body'] }),
      );
      await db.start({ reconcileMs: 100 });
      await db.waitUntilIdle();
      const out = await db.db.query(`SELECT output FROM superduper.out_tl`);
      expect(out.rows).toEqual([{ output: 1 }]);
    } finally {
      await db.close();
      await installer.close();
    }
  });
});
