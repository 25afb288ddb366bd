import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listener } from '../../../src/components/listener.js';
import { onnxModel } from '../../../src/components/model.js';
import { linearModel, randomMatrix } from '../../../src/models/onnx-builder.js';
import { eventually } from '../../helpers/database.js';
import { startSidecarProcess } from '../../helpers/processes.js';
import { createTestStore, type Row, type TestStore } from '../../helpers/stores.js';

// kill -9 of a sidecar process mid-backfill, on every backend: the model is an
// ONNX file stored in the database, so a sidecar process loads it from there.
const ROWS = 10_000;
const weights = randomMatrix(3 * 4, 7);

/** What the ONNX model computes: [a, b, c] · W, in float32 like onnxruntime. */
function expected(a: number, b: number, c: number): number[] {
  const x = [a, b, c].map(Math.fround);
  return [0, 1, 2, 3].map((j) => x.reduce((sum, xi, i) => Math.fround(sum + Math.fround(xi * weights[i * 4 + j]!)), 0));
}

const point = (id: number): Row => ({ id, a: id % 97, b: (id * 7) % 13, c: id / 1000 });

let store: TestStore;

beforeAll(async () => {
  store = await createTestStore('any_crash');
  await store.createSource('points', { a: 'real', b: 'real', c: 'real' }, Array.from({ length: ROWS }, (_, i) => point(i + 1)));
  await store.db.apply(
    onnxModel({ name: 'linear', file: linearModel({ inputDim: 3, outputDim: 4, weights }), output: { type: 'vector', dim: 4 } }),
    listener({ name: 'points_l', model: 'linear', ...store.on('points'), keys: ['a', 'b', 'c'], settings: { chunk_size: 100, batch_size: 100 } }),
  );
});

afterAll(async () => {
  await store?.close();
});

describe('a sidecar killed mid-backfill, on any backend', () => {
  it('loses nothing: after a restart every row has exactly one output, from its current value', { timeout: 120_000 }, async () => {
    const first = await startSidecarProcess(store.uri);
    await eventually(async () => (await store.outputs('points_l')).size >= 1000, 60_000, 'the backfill to be under way');
    first.child.kill('SIGKILL');
    await first.exited;
    expect((await store.outputs('points_l')).size).toBeLessThan(ROWS); // really mid-run

    // Whatever it had claimed stays leased to it; rows change meanwhile.
    const every = (n: number) => Array.from({ length: ROWS }, (_, i) => i + 1).filter((id) => id % n === 0);
    await store.update('points', every(40), { a: 1000 });
    await store.delete('points', every(199));
    await store.insert('points', Array.from({ length: 100 }, (_, i) => ({ id: ROWS + 1 + i, a: 1, b: 2, c: 3 })));

    const second = await startSidecarProcess(store.uri, { env: { SD_DEAD_AFTER_MS: '2000', SD_HEARTBEAT_MS: '250' } });
    await store.db.waitFor('points_l', { timeoutMs: 90_000 });
    second.child.kill('SIGTERM');
    await second.exited;

    const rows = await store.rows('points');
    const outputs = await store.outputs('points_l');
    expect(rows.size).toBe(ROWS - every(199).length + 100);
    expect([...outputs.keys()].sort((x, y) => x - y), 'one output per row, none for a deleted one').toEqual([...rows.keys()].sort((x, y) => x - y));
    let mismatches = 0;
    for (const [id, row] of rows) {
      const output = outputs.get(id) as number[];
      const want = expected(Number(row.a), Number(row.b), Number(row.c));
      if (output.some((v, i) => Math.abs(v - want[i]!) > 1e-3 * Math.max(1, Math.abs(want[i]!)))) mismatches++;
    }
    expect(mismatches).toBe(0);
    expect(await store.db.failures()).toEqual([]);
  });
});
