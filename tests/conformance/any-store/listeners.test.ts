import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listener } from '../../../src/components/listener.js';
import { countingFeatureModel, features } from '../../helpers/models.js';
import { createTestStore, type TestStore } from '../../helpers/stores.js';

// What a listener does on every backend, SQL or not: the data is written and
// read through tests/helpers/stores.ts, everything else through the product's API.
let store: TestStore;

beforeEach(async () => {
  store = await createTestStore('any_listeners');
  await store.createSource('docs', { body: 'text', note: 'text' }, [
    { id: 1, body: 'alpha one', note: 'a' },
    { id: 2, body: 'beta 22', note: 'b' },
    { id: 3, body: 'gamma 333', note: 'c' },
  ]);
});

afterEach(async () => {
  await store?.close();
});

async function expectOutputsMatchRows(name = 'docs_features'): Promise<void> {
  const rows = await store.rows('docs');
  const outputs = await store.outputs(name);
  expect([...outputs.keys()].sort((a, b) => a - b)).toEqual([...rows.keys()].sort((a, b) => a - b));
  for (const [id, row] of rows) expect(outputs.get(id), `row ${id}`).toEqual(features(row.body as string));
}

describe('a listener, on any backend', () => {
  it('backfills existing rows, then follows inserts, updates and deletes', async () => {
    const model = countingFeatureModel();
    const [modelResult, applied] = await store.db.apply(model, listener({ name: 'docs_features', model: 'features', ...store.on('docs'), keys: ['body'] }));
    expect(modelResult).toMatchObject({ type: 'model', action: 'created' });
    expect(applied).toMatchObject({ type: 'listener', action: 'created', version: 1, backfill: 3 });
    await store.db.start({ reconcileMs: 100 });
    await store.db.waitFor('docs_features', { timeoutMs: 20_000 });
    await expectOutputsMatchRows();

    await store.insert('docs', [
      { id: 4, body: 'delta 4444', note: 'd' },
      { id: 5, body: 'epsilon', note: 'e' },
    ]);
    await store.update('docs', [1], { body: 'alpha changed 1' });
    await store.delete('docs', [2]);
    await store.db.waitFor('docs_features', { timeoutMs: 20_000 });
    await expectOutputsMatchRows();
    expect([...model.calls].filter(([, count]) => count > 1), 'nothing computed twice').toEqual([]);
  });

  it('re-applying the same spec changes nothing; a change to no key field computes nothing', async () => {
    const model = countingFeatureModel();
    const spec = listener({ name: 'docs_features', model: 'features', ...store.on('docs'), keys: ['body'] });
    await store.db.apply(model, spec);
    await store.db.start({ reconcileMs: 100 });
    await store.db.waitFor('docs_features', { timeoutMs: 20_000 });
    const [, again] = await store.db.apply(model, spec);
    expect(again).toMatchObject({ action: 'unchanged', version: 1 });

    const callsBefore = [...model.calls.values()].reduce((a, b) => a + b, 0);
    await store.update('docs', [1, 2, 3], { note: 'changed' });
    await store.update('docs', [3], { body: 'gamma changed 3' });
    await store.db.waitFor('docs_features', { timeoutMs: 20_000 });
    expect([...model.calls.values()].reduce((a, b) => a + b, 0) - callsBefore, 'only the key change computed').toBe(1);
    await expectOutputsMatchRows();
  });

  it('reports its status, and records the rows its model fails on, naming them', async () => {
    await store.db.apply(
      countingFeatureModel(),
      listener({ name: 'docs_features', model: 'features', ...store.on('docs'), keys: ['body'] }),
      listener({ name: 'docs_notes', model: 'features', ...store.on('docs'), keys: ['note'], settings: { max_attempts: 1 } }),
    );
    await store.db.start({ reconcileMs: 100 });
    await store.update('docs', [2], { note: null });
    await store.db.waitFor('docs_features', { timeoutMs: 20_000 });
    await store.db.waitFor('docs_notes', { timeoutMs: 20_000 });
    const status = await store.db.status();
    expect(status.find((s) => s.listener === 'docs_features')).toMatchObject({ state: 'current', pending: 0, failed: 0, done: 3 });
    expect(status.find((s) => s.listener === 'docs_notes')).toMatchObject({ failed: 1, done: 2 });
    const failures = await store.db.failures();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ listener: 'docs_notes' });
    expect(failures[0]!.error).toMatch(/NULL/);
  });
});
