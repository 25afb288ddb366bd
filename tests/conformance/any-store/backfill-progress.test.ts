/**
 * Progress that moves with the work: a backfill range is written at once when
 * all its rows are computed, so with a slow model the outputs count stands
 * still for the whole range. The sidecar says how far it is (about once a
 * second), and status shows it as computing, back to 0 once written.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { functionModel } from '../../../src/models/function-runtime.js';
import { eventually } from '../../helpers/database.js';
import { createTestStore, type TestStore } from '../../helpers/stores.js';

let store: TestStore;

/** 10 rows a call, 150 ms a call: a range of 300 rows takes about 4.5 s. */
const slow = functionModel({
  name: 'slow_length',
  output: { type: 'integer' },
  version: 'slow-length',
  predict: async (inputs: string[]) => {
    await new Promise((resolve) => setTimeout(resolve, 150));
    return inputs.map((text) => text.length);
  },
});

beforeEach(async () => {
  store = await createTestStore('backfill_progress');
  await store.createSource('slow_docs', { body: 'text' }, Array.from({ length: 300 }, (_, i) => ({ id: i + 1, body: 'x'.repeat(i + 1) })));
});

afterEach(async () => {
  await store?.close();
});

describe('backfill progress', () => {
  it('shows the rows a sidecar has computed in a range not yet written, and none once it is', async () => {
    const db = store.db;
    await db.apply(slow, { type: 'listener', name: 'slow_len', model: 'slow_length', ...store.on('slow_docs'), keys: ['body'], settings: { batch_size: 10 } });
    await db.start({ reconcileMs: 100 });
    const status = async () => (await db.status({ countDone: true })).find((s) => s.listener === 'slow_len')!;
    const midway = (await eventually(
      async () => {
        const s = await status();
        return s.computing > 0 ? s : undefined;
      },
      20_000,
      'computing > 0',
    ))!;
    // Still one range, not written: nothing done yet, and what is computed is part of what is in flight.
    expect(midway.done).toBe(0);
    expect(midway.computing).toBeGreaterThan(0);
    expect(midway.computing).toBeLessThan(300);
    expect(midway.in_flight).toBe(300);
    await db.waitFor('slow_len', { timeoutMs: 30_000 });
    expect(await status()).toMatchObject({ done: 300, computing: 0, in_flight: 0, pending: 0 });
  });
});
