/**
 * Applications, templates and packages on every backend (PostgreSQL, the
 * embedded database, MongoDB): applied as one and unchanged applied again,
 * a template's variables rendered, what an application no longer lists
 * removed, a model another application holds kept, the refusals, and a
 * package exported and applied back under another name.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { application } from '../../../src/components/application.js';
import { listener } from '../../../src/components/listener.js';
import { vectorIndex } from '../../../src/components/vector-index.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { createTestStore, type TestStore } from '../../helpers/stores.js';

let store: TestStore;
const measure = functionModel({ name: 'measure', output: { type: 'vector', dim: 2 }, predict: (ins: string[]) => ins.map((t) => [t.length, 1]) });

/** A template over one source: its name, and so its components' names, is a variable. */
const app = (withIndex = true, name = 'notes') =>
  application({
    name: '{{prefix}}',
    variables: { prefix: { type: 'text', default: 'notes' }, batch: { type: 'integer', default: 8 } },
    values: { prefix: name },
    components: [
      measure,
      { type: 'listener', name: '{{prefix}}_measure', model: 'measure', ...store.on('notes'), keys: ['body'], settings: { batch_size: '{{batch}}' } },
      ...(withIndex ? [vectorIndex({ name: '{{prefix}}_index', listener: '{{prefix}}_measure' })] : []),
    ],
  });
const actions = (result: { components?: Array<{ name: string; action: string }> } | undefined) => result!.components!.map((c) => [c.name, c.action]);

beforeEach(async () => {
  store = await createTestStore('any_applications');
  await store.createSource('notes', { body: 'text' }, [
    { id: 1, body: 'hello' },
    { id: 2, body: 'moon' },
  ]);
  await store.db.start({ reconcileMs: 100 });
});

afterEach(async () => {
  await store?.close();
});

describe('applications on every backend', () => {
  it('applies a template as one, computes, and is unchanged applied again', async () => {
    const [created] = await store.db.apply(app());
    expect(created).toMatchObject({ type: 'application', name: 'notes', action: 'created' });
    expect(actions(created)).toEqual([
      ['measure', 'created'],
      ['notes_measure', 'created'],
      ['notes_index', 'created'],
    ]);
    await store.db.waitFor('notes_measure', { timeoutMs: 20_000 });
    expect([...(await store.outputs('notes_measure')).entries()].sort()).toEqual([
      [1, [5, 1]],
      [2, [4, 1]],
    ]);
    const [again] = await store.db.apply(app());
    expect(again).toMatchObject({ action: 'unchanged' });
  });

  it('keeps a model version and its outputs when only how it is called changes', async () => {
    await store.db.apply(app());
    await store.db.waitFor('notes_measure', { timeoutMs: 20_000 });
    const spec = measure.spec as { config: Record<string, unknown> };
    const [called] = await store.db.apply({ ...spec, config: { ...spec.config, batch_size: 4, max_retries: 1 } });
    expect(called).toMatchObject({ type: 'model', name: 'measure', action: 'updated', version: 1 });
    expect(called).not.toHaveProperty('rebuilding');
    // The listener was not rebuilt: a new row is computed by its current version.
    await store.insert('notes', [{ id: 3, body: 'planet' }]);
    await store.db.waitFor('notes_measure', { timeoutMs: 20_000 });
    expect((await store.outputs('notes_measure')).get(3)).toEqual([6, 1]);
    const status = await store.db.status();
    expect(status.filter((s) => s.listener === 'notes_measure').map((s) => s.version)).toEqual([1]);
  });

  it('removes what it no longer lists, and on removal keeps what another application holds', async () => {
    await store.db.apply(app());
    const [smaller] = await store.db.apply(app(false));
    expect(actions(smaller)).toEqual([
      ['notes_index', 'removed'],
      ['measure', 'unchanged'],
      ['notes_measure', 'unchanged'],
    ]);
    await store.db.apply(app(false, 'other'));
    const removed = await store.db.remove('notes');
    expect(removed.map((r) => [r.type, r.name, r.action])).toEqual([
      ['listener', 'notes_measure', 'removed'],
      ['model', 'measure', 'kept'],
      ['application', 'notes', 'removed'],
    ]);
    expect(removed[1]).toMatchObject({ held_by: 'other' });
    expect((await store.db.remove('other')).map((r) => [r.name, r.action])).toEqual([
      ['other_measure', 'removed'],
      ['measure', 'removed'],
      ['other', 'removed'],
    ]);
  });

  it('plans an apply without doing it: what it creates, rebuilds and removes, the rows, and the tokens a billed model would be sent', async () => {
    const billed = {
      type: 'model',
      name: 'api_embedder',
      runtime: 'openai',
      output: { type: 'vector', dim: 2 },
      config: { model: 'text-embedding-3-small', api_key_env: 'NO_SUCH_KEY' },
    };
    const [first] = await store.db.plan(app());
    expect(first).toMatchObject({ type: 'application', name: 'notes', action: 'created', destructive: false });
    // (A vector index's rows: on PostgreSQL the vectors there to index now, none yet; MongoDB builds nothing.)
    expect(first!.components!.map((c) => [c.name, c.action, c.destructive, c.type === 'vector_index' ? (c.rows ?? 0) : c.rows])).toEqual([
      ['measure', 'created', false, undefined],
      ['notes_measure', 'created', false, 2],
      ['notes_index', 'created', false, 0],
    ]);
    expect(await store.db.status()).toEqual([]);
    expect(await store.db.remove('notes').catch((error: Error) => error.message)).toMatch(/no .*named 'notes'/);

    await store.db.apply(app(), billed);
    await store.db.waitFor('notes_measure', { timeoutMs: 20_000 });
    // Another model for the listener (a rebuild, destructive), without its index (removed).
    const changed = application({
      name: 'notes',
      components: [{ type: 'listener', name: 'notes_measure', model: 'api_embedder', ...store.on('notes'), keys: ['body'] }],
    });
    const [plan] = await store.db.plan(changed);
    expect(plan).toMatchObject({ action: 'updated', destructive: true });
    expect(plan!.components!.map((c) => [c.name, c.action, c.destructive])).toEqual([
      ['notes_index', 'removed', true],
      ['measure', 'kept', false],
      ['notes_measure', 'rebuilding', true],
    ]);
    // "hello" and "moon": 4.5 characters a row, 2 rows, 4 characters a token.
    expect(plan!.components![2]).toMatchObject({ rows: 2, tokens_estimate: 3 });
    // Nothing was done: the application applied as before is unchanged.
    const [again] = await store.db.apply(app());
    expect(again).toMatchObject({ action: 'unchanged' });
  });

  it('refuses a bad application, naming it, and applies nothing', async () => {
    const bad = (spec: Record<string, unknown>) => store.db.apply({ type: 'application', ...spec });
    await expect(bad({ name: 'a', components: [{ type: 'application', name: 'b', components: [] }] })).rejects.toThrow(/applications do not nest/);
    await expect(bad({ name: 'a', components: [measure.spec, measure.spec] })).rejects.toThrow(/application "a": model "measure" is listed twice/);
    await expect(bad({ name: 'a', values: { x: 1 }, components: [measure.spec] })).rejects.toThrow(/"values" given, but no "variables" declared/);
    await expect(bad({ name: 'a', variables: { t: { type: 'table' } }, components: [measure.spec] })).rejects.toThrow(
      /application "a": variable "t" has no value and no default/,
    );
    await expect(
      bad({ name: 'a', components: [measure.spec, { type: 'listener', name: 'l', model: 'no_such_model', ...store.on('notes'), keys: ['body'] }] }),
    ).rejects.toThrow(/no_such_model/);
    await expect(store.db.remove('measure')).rejects.toThrow(/no .*named 'measure'/);
  });

  it('exports a package and applies it back under another name', async () => {
    await store.db.apply(app());
    const zip = join(mkdtempSync(join(tmpdir(), 'superduper-any-package-')), 'notes.zip');
    const document = await store.db.exportApplication('notes', zip);
    expect(document.functions).toEqual(['measure']);
    const [applied] = await store.db.applyPackage(zip, { values: { prefix: 'copy' }, functions: [measure] });
    expect(applied).toMatchObject({ type: 'application', name: 'copy', action: 'created' });
    expect(actions(applied)).toEqual([
      ['measure', 'unchanged'],
      ['copy_measure', 'created'],
      ['copy_index', 'created'],
    ]);
    await store.db.waitFor('copy_measure', { timeoutMs: 20_000 });
    expect((await store.outputs('copy_measure')).get(1)).toEqual([5, 1]);
  });
});
