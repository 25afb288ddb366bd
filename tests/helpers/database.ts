import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { connect, type Superduper } from '../../src/client.js';
import { createLogger } from '../../src/logger.js';
import { adminUri, TEMPLATE_DATABASE, uriFor } from './uris.js';

export interface TestDatabase {
  name: string;
  uri: string;
  /** A plain node-postgres pool for the test's own SQL (as a user's app would). */
  sql: pg.Pool;
  drop(): Promise<void>;
}

/** A new database with superduper installed (a clone of the template). */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `sdtest_${label.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}_${randomUUID().slice(0, 8)}`;
  const admin = new pg.Client({ connectionString: adminUri() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const uri = uriFor(name);
  const sql = new pg.Pool({ connectionString: uri, max: 4 });
  sql.on('error', () => {});
  return {
    name,
    uri,
    sql,
    async drop() {
      await sql.end();
      const client = new pg.Client({ connectionString: adminUri() });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export async function connectTest(database: TestDatabase): Promise<Superduper> {
  return connect(database.uri, { logger: createLogger(process.env.SUPERDUPER_LOG_LEVEL ?? 'silent') });
}

/** Polls until check() returns a truthy value; fails with the last value after timeoutMs. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
