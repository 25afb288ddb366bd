import pg from 'pg';
import { connectPostgres } from '../../src/backends/postgres/driver.js';
import { connect, type Superduper } from '../../src/client.js';
import { install } from '../../src/install.js';
import { createLogger } from '../../src/logger.js';

/** The project's cluster (scripts/pg.sh), or SUPERDUPER_BENCH_URI's. */
export function adminUri(): string {
  return process.env.SUPERDUPER_BENCH_URI ?? 'postgres://postgres@127.0.0.1:54329/postgres';
}

export function uriFor(database: string): string {
  const url = new URL(adminUri());
  url.pathname = `/${database}`;
  return url.toString();
}

/** A new database with superduper installed by the real installer. */
export async function freshDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUri() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const uri = uriFor(name);
  const db = await connectPostgres(uri);
  await install(db);
  await db.close();
  return uri;
}

export async function dropDatabase(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUri() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

export async function open(uri: string): Promise<Superduper> {
  return connect(uri, { logger: createLogger('warn') });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** mulberry32: a seeded generator in [0, 1), so every run measures the same data (the trainer's own, kept once). */
export { mulberry32 as seededRandom } from '../../src/training/random.js';
