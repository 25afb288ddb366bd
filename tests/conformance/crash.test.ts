import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { onnxModel } from '../../src/components/model.js';
import { linearModel, randomMatrix } from '../../src/models/onnx-builder.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';
import { startSidecarProcess } from '../helpers/processes.js';

const ROWS = 20_000;
const weights = randomMatrix(3 * 4, 7);

/** What the ONNX model computes: [a, b, c] · W, in float32 like onnxruntime. */
function expected(a: number, b: number, c: number): number[] {
  const x = [a, b, c].map(Math.fround);
  return [0, 1, 2, 3].map((j) => x.reduce((sum, xi, i) => Math.fround(sum + Math.fround(xi * weights[i * 4 + j]!)), 0));
}

let database: TestDatabase;
let db: Superduper;

beforeAll(async () => {
  database = await createTestDatabase('crash');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE points (id bigint PRIMARY KEY, a real, b real, c real);
    INSERT INTO points SELECT g, g % 97, (g * 7) % 13, g / 1000.0 FROM generate_series(1, ${ROWS}) g`);
  await db.apply(
    onnxModel({ name: 'linear', file: linearModel({ inputDim: 3, outputDim: 4, weights }), output: { type: 'vector', dim: 4 } }),
    listener({ name: 'points_l', model: 'linear', table: 'points', keys: ['a', 'b', 'c'], settings: { chunk_size: 100, batch_size: 100 } }),
  );
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

const done = async () => (await database.sql.query(`SELECT count(*)::int AS n FROM superduper.out_points_l`)).rows[0].n as number;

describe('a sidecar killed mid-backfill', () => {
  it('loses nothing: after a restart every row has exactly one output, from its current value', { timeout: 120_000 }, async () => {
    const first = await startSidecarProcess(database.uri);
    await eventually(async () => (await done()) >= 2000, 60_000, 'the backfill to be under way');
    first.child.kill('SIGKILL');
    await first.exited;
    const atKill = await done();
    expect(atKill).toBeLessThan(ROWS); // really mid-run

    // Whatever it had claimed stays leased to it; rows change meanwhile.
    await database.sql.query(`UPDATE points SET a = a + 1000 WHERE id % 40 = 0`);
    await database.sql.query(`DELETE FROM points WHERE id % 199 = 0`);
    await database.sql.query(`INSERT INTO points SELECT g, 1, 2, 3 FROM generate_series(${ROWS + 1}, ${ROWS + 100}) g`);

    const second = await startSidecarProcess(database.uri, { env: { SD_DEAD_AFTER_MS: '2000', SD_HEARTBEAT_MS: '250' } });
    await db.waitUntilIdle({ timeoutMs: 90_000 });
    second.child.kill('SIGTERM');
    await second.exited;

    const rows = await database.sql.query<{ id: string; a: number; b: number; c: number; output: string | null }>(
      `SELECT p.id, p.a, p.b, p.c, o.output::text FROM points p LEFT JOIN superduper.out_points_l o USING (id)`,
    );
    const total = (await database.sql.query(`SELECT count(*)::int AS n FROM points`)).rows[0].n;
    expect(rows.rows).toHaveLength(total);
    expect(await done()).toBe(total); // exactly one output per row (and no orphans, see below)
    let mismatches = 0;
    for (const row of rows.rows) {
      const output = row.output === null ? null : (JSON.parse(row.output) as number[]);
      const want = expected(row.a, row.b, row.c);
      if (!output || output.some((v, i) => Math.abs(v - want[i]!) > 1e-3 * Math.max(1, Math.abs(want[i]!)))) mismatches++;
    }
    expect(mismatches).toBe(0);
    const orphans = await database.sql.query(`SELECT count(*)::int AS n FROM superduper.out_points_l o WHERE NOT EXISTS (SELECT 1 FROM points p WHERE p.id = o.id)`);
    expect(orphans.rows[0].n).toBe(0);
    expect(await db.failures()).toEqual([]);
  });
});
