import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { EmbeddedDatabase } from '../../src/backends/pglite/driver.js';
import { connect, type Superduper } from '../../src/client.js';
import { createLogger } from '../../src/logger.js';
import { testBackendName } from './backends.js';
import { adminUri, PGLITE_TEMPLATE_FILE, TEMPLATE_DATABASE, uriFor } from './uris.js';

export interface TestDatabase {
  name: string;
  /** A connection string: the real server's, or the embedded database's wire server. */
  uri: string;
  /** A plain node-postgres pool for the test's own SQL (as a user's app would). */
  sql: pg.Pool;
  /** The embedded database itself, when the tests run on PGlite (SUPERDUPER_TEST_BACKEND=pglite). */
  embedded?: EmbeddedDatabase;
  drop(): Promise<void>;
}

/**
 * A new database with superduper installed (a clone of the template): on the
 * test PostgreSQL server, or, with SUPERDUPER_TEST_BACKEND=pglite, an embedded
 * PGlite database opened from the template's dump and served on a local port,
 * so that the same tests talk to it through node-postgres as they do to a server.
 */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `sdtest_${label.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}_${randomUUID().slice(0, 8)}`;
  if (testBackendName() === 'pglite') return createEmbeddedTestDatabase(name);
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

async function createEmbeddedTestDatabase(name: string): Promise<TestDatabase> {
  const { EmbeddedDatabase } = await import('../../src/backends/pglite/driver.js');
  const { serveEmbedded } = await import('../../src/backends/pglite/wire-server.js');
  const embedded = await EmbeddedDatabase.open({ loadDataDir: new Blob([readFileSync(PGLITE_TEMPLATE_FILE)]) });
  const server = await serveEmbedded(embedded, { logger: createLogger('silent') });
  const sql = new pg.Pool({ connectionString: server.uri, max: 4 });
  sql.on('error', () => {});
  return {
    name,
    uri: server.uri,
    sql,
    embedded,
    async drop() {
      await sql.end();
      await embedded.close();
    },
  };
}

export async function connectTest(database: TestDatabase): Promise<Superduper> {
  return connect(database.embedded ?? database.uri, { logger: createLogger(process.env.SUPERDUPER_LOG_LEVEL ?? 'silent') });
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
