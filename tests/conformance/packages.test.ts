/**
 * Packages (src/packages/, docs/packaging.md): an application built in one
 * database, exported (zip and folder), applied to a fresh database under other
 * table names through variables; the same package twice is a no-op; and each
 * refusal (an entry outside the package, a checksum mismatch, an oversized
 * entry, a newer format or spec version, a missing table, a function model not
 * provided) applies nothing.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { application } from '../../src/components/application.js';
import { listener } from '../../src/components/listener.js';
import { onnxModel } from '../../src/components/model.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { linearModel } from '../../src/models/onnx-builder.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

const dir = mkdtempSync(join(tmpdir(), 'superduper-packages-'));
let source: TestDatabase;
let sourceDb: Superduper;
let target: TestDatabase;
let targetDb: Superduper;

const lin = onnxModel({ name: 'lin', file: linearModel({ inputDim: 1, outputDim: 2, seed: 7 }), output: { type: 'vector', dim: 2 } });
const tag = functionModel({ name: 'tag', output: { type: 'text' }, predict: (xs: number[]) => xs.map((x) => `n${x}`) });

/** A template: one ONNX model, a listener on the table its variable names, a vector index. */
const numbersApp = application({
  name: '{{name}}',
  variables: { name: { type: 'text' }, table: { type: 'table', description: 'a table with a numeric column x' } },
  values: { name: 'numbers', table: 'nums' },
  components: [listener({ name: '{{name}}_lin', model: lin, table: '{{table}}', keys: ['x'] }), vectorIndex({ name: '{{name}}_index', listener: '{{name}}_lin' })],
});

const registry = async (database: TestDatabase) => ({
  models: (await database.sql.query(`SELECT name, runtime, output, artifact FROM superduper._models WHERE name <> 'default-embedder' ORDER BY name`)).rows,
  listeners: (await database.sql.query(`SELECT DISTINCT name, keys FROM superduper._listeners ORDER BY name`)).rows,
  indexes: (await database.sql.query(`SELECT name, listener, measure, options FROM superduper._vector_indexes ORDER BY name`)).rows,
  applications: (await database.sql.query(`SELECT name, variables FROM superduper._applications ORDER BY name`)).rows,
});
const empty = { models: [], listeners: [], indexes: [], applications: [] };

beforeAll(async () => {
  source = await createTestDatabase('packages_source');
  sourceDb = await connectTest(source);
  await source.sql.query(`CREATE TABLE nums (id int PRIMARY KEY, x real); INSERT INTO nums VALUES (1, 1), (2, 2), (3, 3)`);
  await sourceDb.apply(numbersApp);
  await sourceDb.start({ reconcileMs: 100 });
  await sourceDb.waitFor('numbers_lin', { timeoutMs: 20_000 });
  target = await createTestDatabase('packages_target');
  targetDb = await connectTest(target);
  await target.sql.query(`CREATE TABLE "Other ""nums""" (id int PRIMARY KEY, x real); INSERT INTO "Other ""nums""" VALUES (1, 1), (2, 2), (3, 3)`);
}, 120_000);

afterAll(async () => {
  await Promise.all([sourceDb?.close(), targetDb?.close()]);
  await Promise.all([source?.drop(), target?.drop()]);
});

describe('packages', () => {
  it('round trip: exported as a zip, applied to another database under other names, computing the same outputs', async () => {
    const zip = join(dir, 'numbers.zip');
    const document = await sourceDb.exportApplication('numbers', zip);
    expect(document).toMatchObject({ format: 'superduper-package', format_version: 1, functions: [] });
    expect(Object.keys(document.files)).toHaveLength(1);
    expect(document.application).toMatchObject({ name: '{{name}}', variables: { table: { type: 'table' } } });

    const [applied] = await targetDb.applyPackage(zip, { values: { name: 'other', table: 'Other "nums"' } });
    expect(applied).toMatchObject({ type: 'application', name: 'other', action: 'created' });
    const [a, b] = [await registry(source), await registry(target)];
    expect(b.models).toEqual(a.models); // the same ONNX file, by SHA-256
    expect(b.listeners).toEqual([{ name: 'other_lin', keys: ['x'] }]);
    expect(b.indexes.map((i) => ({ ...i, name: undefined, listener: undefined }))).toEqual(a.indexes.map((i) => ({ ...i, name: undefined, listener: undefined })));
    expect(b.applications).toEqual([{ name: 'other', variables: { name: 'other', table: 'Other "nums"' } }]);
    // The model is the same component in both: the same identity and hash.
    const identities = async (database: TestDatabase) =>
      (await database.sql.query(`SELECT identity, hash FROM superduper.component_versions WHERE type = 'model' AND name = 'lin'`)).rows;
    expect(await identities(target)).toEqual(await identities(source));

    await targetDb.start({ reconcileMs: 100 });
    await targetDb.waitFor('other_lin', { timeoutMs: 20_000 });
    const outputs = async (database: TestDatabase, table: string) =>
      (await database.sql.query(`SELECT id, output::text FROM superduper.${table} ORDER BY id`)).rows;
    expect(await outputs(target, 'out_other_lin')).toEqual(await outputs(source, 'out_numbers_lin'));

    // The same package again: nothing to do.
    const [again] = await targetDb.applyPackage(zip, { values: { name: 'other', table: 'Other "nums"' } });
    expect(again).toMatchObject({ action: 'unchanged' });
    await targetDb.remove('other');
    expect(await registry(target)).toEqual(empty);
  });

  it('a new release of the package with a breaking change in a child rebuilds that child only, and the application gets a new version', async () => {
    const folder = join(dir, 'numbers-release');
    await sourceDb.exportApplication('numbers', folder);
    const values = { name: 'release', table: 'Other "nums"' };
    const [first] = await targetDb.applyPackage(folder, { values });
    expect(first).toMatchObject({ action: 'created', version: 1 });
    // Release 2: the same package, its vector index measuring l2 distances.
    const documentPath = join(folder, 'superduper.json');
    const document = JSON.parse(readFileSync(documentPath, 'utf8'));
    for (const component of document.application.components) if (component.type === 'vector_index') component.measure = 'l2';
    writeFileSync(documentPath, JSON.stringify(document, null, 2));
    const [plan] = await targetDb.planPackage(folder, { values });
    expect(plan!.components!.map((c) => [c.name, c.action, c.destructive])).toEqual([
      ['lin', 'unchanged', false],
      ['release_lin', 'unchanged', false],
      ['release_index', 'rebuilding', false],
    ]);
    const [second] = await targetDb.applyPackage(folder, { values });
    expect(second).toMatchObject({ action: 'updated', version: 2 });
    expect(second!.components!.map((c) => [c.name, c.action])).toEqual(plan!.components!.map((c) => [c.name, c.action]));
    expect((await target.sql.query(`SELECT version FROM superduper.applications WHERE name = 'release'`)).rows).toEqual([{ version: 2 }]);
    await targetDb.remove('release');
    expect(await registry(target)).toEqual(empty);
  });

  it('exports to a folder too, and plans applying it without applying anything', async () => {
    const folder = join(dir, 'numbers-folder');
    await sourceDb.exportApplication('numbers', folder);
    const document = JSON.parse(readFileSync(join(folder, 'superduper.json'), 'utf8'));
    const [blob] = Object.keys(document.files);
    expect(readFileSync(join(folder, blob!)).byteLength).toBe(document.files[blob!].bytes);
    const [plan] = await targetDb.planPackage(folder, { values: { name: 'other', table: 'Other "nums"' } });
    expect(plan).toMatchObject({ action: 'created', destructive: false });
    expect(await registry(target)).toEqual(empty);
  });

  it('refuses a damaged, unsafe or too new package, or one the database cannot take, and applies nothing', async () => {
    const folder = join(dir, 'base');
    const document = await sourceDb.exportApplication('numbers', folder);
    const [blobFile] = Object.keys(document.files);
    const blob = readFileSync(join(folder, blobFile!));
    const values = { name: 'other', table: 'Other "nums"' };
    const variant = (name: string, change: (doc: Record<string, unknown>) => void, blobBytes: Uint8Array = blob) => {
      const doc = structuredClone(document) as unknown as Record<string, unknown>;
      change(doc);
      const path = join(dir, `${name}.zip`);
      writeFileSync(path, zipSync({ 'superduper.json': new TextEncoder().encode(JSON.stringify(doc)), [blobFile!]: blobBytes }));
      return path;
    };

    const slip = join(dir, 'slip.zip');
    writeFileSync(slip, zipSync({ 'superduper.json': readFileSync(join(folder, 'superduper.json')), '../evil.sh': new TextEncoder().encode('echo hi') }));
    await expect(targetDb.applyPackage(slip, { values })).rejects.toThrow(/entry "\.\.\/evil\.sh" points outside the package; nothing was applied/);

    const damaged = new Uint8Array(blob);
    damaged[damaged.length - 1] = damaged[damaged.length - 1]! ^ 1;
    await expect(targetDb.applyPackage(variant('damaged', () => {}, damaged), { values })).rejects.toThrow(/checksum mismatch: blobs\/[0-9a-f]{64} has SHA-256/);

    await expect(targetDb.applyPackage(variant('big', () => {}), { values, limits: { maxEntries: 100, maxEntryBytes: 64, maxTotalBytes: 1 << 20 } })).rejects.toThrow(
      /entry (superduper\.json|blobs\/[0-9a-f]{64}) is \d+ bytes, over the limit of 64/,
    );
    await expect(targetDb.applyPackage(variant('newer', (doc) => (doc.format_version = 99)), { values })).rejects.toThrow(
      /package format 99, newer than this superduper reads \(up to 1\)/,
    );
    await expect(targetDb.applyPackage(variant('newer-spec', (doc) => ((doc.spec_versions as Record<string, number>).listener = 99)), { values })).rejects.toThrow(
      /listener 'other_lin': spec_version 99 is newer than this database's superduper reads/,
    );
    await expect(targetDb.applyPackage(variant('unknown', () => {}), { values: { ...values, colour: 'red' } })).rejects.toThrow(/no variable named 'colour'/);
    // A table the package needs that this database does not have: the listener's own refusal.
    await expect(targetDb.applyPackage(variant('no-table', () => {}), { values: { name: 'other', table: 'no_such_table' } })).rejects.toThrow(/no_such_table/);
    expect(await registry(target)).toEqual(empty);
  });

  it('names a function model the package needs, and applies it when this process provides it', async () => {
    await sourceDb.apply(application({ name: 'tags', components: [listener({ name: 'num_tags', model: tag, table: 'nums', keys: ['x'] })] }));
    const zip = join(dir, 'tags.zip');
    const document = await sourceDb.exportApplication('tags', zip);
    expect(document.functions).toEqual(['tag']);
    expect(JSON.stringify(document)).not.toContain('n${x}'); // no code in the package
    await target.sql.query(`CREATE TABLE nums (id int PRIMARY KEY, x real); INSERT INTO nums VALUES (5, 5)`);
    await expect(targetDb.applyPackage(zip)).rejects.toThrow(/needs the function model\(s\) "tag", whose code is never in a package; nothing was applied/);
    expect(await registry(target)).toEqual(empty);
    const [applied] = await targetDb.applyPackage(zip, { functions: [tag] });
    expect(applied).toMatchObject({ name: 'tags', action: 'created' });
    await targetDb.start({ reconcileMs: 100 });
    await targetDb.waitFor('num_tags', { timeoutMs: 20_000 });
    expect((await target.sql.query(`SELECT id, output FROM superduper.out_num_tags`)).rows).toEqual([{ id: 5, output: 'n5' }]);
  });
});
