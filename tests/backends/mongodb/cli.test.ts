import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AnyDocument, createMongoTestDatabase, type MongoTestDatabase } from '../../helpers/mongodb.js';
import { startCliSidecar, type CliSidecar } from '../../helpers/processes.js';

let database: MongoTestDatabase;
let dir: string;
let sidecar: CliSidecar | undefined;

beforeEach(async () => {
  database = await createMongoTestDatabase('cli');
  dir = mkdtempSync(join(tmpdir(), 'sd-mongo-cli-'));
});

afterEach(async () => {
  sidecar?.child.kill('SIGTERM');
  await sidecar?.exited;
  sidecar = undefined;
  rmSync(dir, { recursive: true, force: true });
  await database?.drop();
});

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', ...args], { timeout: 120_000, env: { ...process.env, SUPERDUPER_URI: '' } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the CLI on a mongodb:// URI', () => {
  it('installs, applies a spec file, starts a sidecar, waits, shows status and failures, and removes', async () => {
    const docs = database.db.collection<AnyDocument>('docs');
    await docs.insertMany([
      { _id: 1, body: 'the first document' },
      { _id: 2, body: 'a second one' },
    ]);

    const install = await cli('install', database.uri);
    expect(install.code, install.stderr).toBe(0);
    expect(await database.db.collection('superduper.meta').findOne({ _id: 'layer' as never })).toMatchObject({ layout: 1 });

    const spec = join(dir, 'listener.json');
    writeFileSync(spec, JSON.stringify({ type: 'listener', name: 'docs_embedding', collection: 'docs', keys: ['body'], settings: { max_attempts: 2, backoff_seconds: 0.2 } }));
    const apply = await cli('apply', spec, database.uri, '--no-wait');
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toMatch(/docs_embedding/);

    sidecar = await startCliSidecar(database.uri);
    await docs.insertOne({ _id: 3, body: 42 }); // not text: the default embedder fails it
    const wait = await cli('wait', 'docs_embedding', database.uri, '--timeout', '60');
    expect(wait.code, wait.stdout + wait.stderr).not.toBe(0); // it waited, and one change failed
    expect(wait.stdout + wait.stderr).toMatch(/docs_embedding.*\b3\b.*(text|string)/is);

    const status = await cli('status', database.uri, '--json');
    expect(status.code, status.stderr).toBe(0);
    const parsed = JSON.parse(status.stdout) as { listeners: Array<Record<string, unknown>> } | Array<Record<string, unknown>>;
    const listeners = Array.isArray(parsed) ? parsed : parsed.listeners;
    expect(listeners).toMatchObject([{ listener: 'docs_embedding', state: 'current', pending: 0, failed: 1, done: 2 }]);
    const vectors = await database.db.collection('superduper.outputs.docs_embedding').find({}).toArray();
    expect(vectors.map((v) => (v.output as number[]).length)).toEqual([512, 512]);

    const failures = await cli('failures', database.uri, 'docs_embedding');
    expect(failures.code, failures.stderr).toBe(0);
    expect(failures.stdout).toMatch(/docs_embedding/);
    expect(failures.stdout).toMatch(/\b3\b/);

    const remove = await cli('remove', 'docs_embedding', database.uri);
    expect(remove.code, remove.stderr).toBe(0);
    const names = (await database.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
    expect(names.filter((name) => name.startsWith('superduper.outputs.'))).toEqual([]);
    expect(await database.db.collection('superduper.listeners').countDocuments({})).toBe(0);
  });

  it('plans an application, and applies a destructive change only when told to', async () => {
    await database.db.collection<AnyDocument>('docs').insertMany([
      { _id: 1, body: 'the first document' },
      { _id: 2, body: 'a second one' },
    ]);
    expect((await cli('install', database.uri)).code).toBe(0);
    const listenerOn = (name: string) => ({ type: 'listener', name, collection: 'docs', keys: ['body'] });
    const file = join(dir, 'app.json');
    writeFileSync(file, JSON.stringify({ type: 'application', name: 'docs app', components: [listenerOn('first'), listenerOn('second')] }));

    const plan = await cli('plan', file, database.uri);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/application docs app: created/);
    expect(plan.stdout).toMatch(/listener first: created.*2 existing row/);
    expect(await database.db.collection('superduper.listeners').countDocuments({})).toBe(0);
    const json = await cli('plan', file, database.uri, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject([{ type: 'application', action: 'created', destructive: false }]);

    expect((await cli('apply', file, database.uri, '--no-wait')).code).toBe(0);
    // The second listener no longer listed: removed, with its outputs, so not without --yes (no terminal here).
    writeFileSync(file, JSON.stringify({ type: 'application', name: 'docs app', components: [listenerOn('first')] }));
    const dryRun = await cli('apply', file, database.uri, '--dry-run');
    expect(dryRun.stdout).toMatch(/listener second: removed/);
    const refused = await cli('apply', file, database.uri, '--no-wait');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/not applied: .*second/);
    expect(await database.db.collection('superduper.listeners').countDocuments({ name: 'second' })).toBe(1);
    const applied = await cli('apply', file, database.uri, '--no-wait', '--yes');
    expect(applied.code, applied.stderr).toBe(0);
    expect(await database.db.collection('superduper.listeners').countDocuments({ name: 'second' })).toBe(0);
  });

  it('says what to check when nothing answers at a mongodb:// URI', async () => {
    const refused = await cli('status', 'mongodb://127.0.0.1:1/nothing_here');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('hint: Nothing accepts connections at 127.0.0.1:1: start the server, or check the host and port in the URI.');
  });

  it('refuses a MongoDB connection string without a database, saying where it goes', async () => {
    const uri = database.uri.replace(/\/[^/?]+(\?|$)/, '/$1');
    const result = await cli('install', uri);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/names no database/);
  });
});
