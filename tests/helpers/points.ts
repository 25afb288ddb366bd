import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { onnxModel } from '../../src/components/model.js';
import { classifyDatabaseError } from '../../src/errors.js';
import { linearModel, randomMatrix } from '../../src/models/onnx-builder.js';
import type { Queryable } from '../../src/backends/postgres/sql-driver.js';

/**
 * The fault tests' workload: a table of points (id, a, b, c) and a listener
 * computing a 4-d vector from them with an ONNX model stored in the database
 * (so that any sidecar process can run it), whose every output can be checked
 * against its row's current value.
 */
const weights = randomMatrix(3 * 4, 11);

/** What the model computes: [a, b, c] · W, in float32 like onnxruntime. */
export function expectedOutput(a: number, b: number, c: number): number[] {
  const x = [a, b, c].map(Math.fround);
  return [0, 1, 2, 3].map((j) => x.reduce((sum, xi, i) => Math.fround(sum + Math.fround(xi * weights[i * 4 + j]!)), 0));
}

export async function applyPoints(db: Superduper, table = 'points', listenerName = `${table}_l`, settings: Record<string, number> = {}): Promise<void> {
  await db.db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, a real NOT NULL, b real NOT NULL, c real NOT NULL)`);
  await db.apply(
    onnxModel({ name: 'linear', file: linearModel({ inputDim: 3, outputDim: 4, weights }), output: { type: 'vector', dim: 4 } }),
    listener({ name: listenerName, model: 'linear', table, keys: ['a', 'b', 'c'], settings }),
  );
}

export interface OutputCheck {
  rows: number;
  /** Rows without an output. */
  missing: number;
  /** Rows whose output is not from their current value. */
  stale: number;
  /** Outputs whose row is gone. */
  orphans: number;
}

/** Compares every output with what the model gives for its row's current value. */
export async function checkOutputs(sql: Queryable, table = 'points', listenerName = `${table}_l`): Promise<OutputCheck> {
  const rows = await sql.query<{ a: number; b: number; c: number; output: string | null }>(
    `SELECT p.a, p.b, p.c, o.output::text FROM ${table} p LEFT JOIN superduper."out_${listenerName}" o USING (id)`,
  );
  let missing = 0;
  let stale = 0;
  for (const row of rows.rows) {
    if (row.output === null) {
      missing++;
      continue;
    }
    const output = JSON.parse(row.output) as number[];
    const want = expectedOutput(row.a, row.b, row.c);
    if (output.some((v, i) => Math.abs(v - want[i]!) > 1e-3 * Math.max(1, Math.abs(want[i]!)))) stale++;
  }
  const orphans = await sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM superduper."out_${listenerName}" o WHERE NOT EXISTS (SELECT 1 FROM ${table} p WHERE p.id = o.id)`,
  );
  return { rows: rows.rows.length, missing, stale, orphans: orphans.rows[0]!.n };
}

/** Runs a statement, again and again while the database is unreachable (as an application would). */
export async function retrying<T>(fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (classifyDatabaseError(error) !== 'connection' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
