import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { adminUri, PGLITE_TEMPLATE_FILE, TEMPLATE_DATABASE, uriFor } from './uris.js';

/**
 * Builds the SQL module, checks the project's PostgreSQL is up (make test starts
 * it), and builds a template database with the real installer; each test file
 * clones it (CREATE DATABASE ... TEMPLATE), which takes a fraction of a second;
 * and an embedded (PGlite) template, for the tests that also run on PGlite.
 */
export default async function setup(): Promise<void> {
  execFileSync(process.execPath, ['scripts/build-sql-module.mjs'], { stdio: 'ignore' });
  const admin = new pg.Client({ connectionString: adminUri() });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(
      `cannot reach the test PostgreSQL at ${adminUri()} (${(error as Error).message}). ` +
        'Run the tests with "make test", which starts it, or start it with "scripts/pg.sh start".',
    );
  }
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  // Imported here so that the generated SQL module exists first.
  const { connectPostgres } = await import('../../src/backends/postgres/driver.js');
  const { install } = await import('../../src/install.js');
  const db = await connectPostgres(uriFor(TEMPLATE_DATABASE));
  try {
    await install(db);
  } finally {
    await db.close();
  }
  await buildEmbeddedTemplate();
}

/** The same for the embedded database: installed once, dumped, opened from the dump by each test file. */
async function buildEmbeddedTemplate(): Promise<void> {
  const { EmbeddedDatabase } = await import('../../src/backends/pglite/driver.js');
  const { install } = await import('../../src/install.js');
  const embedded = await EmbeddedDatabase.open();
  try {
    await install(embedded);
    const dump = await embedded.dump();
    mkdirSync(dirname(PGLITE_TEMPLATE_FILE), { recursive: true });
    writeFileSync(PGLITE_TEMPLATE_FILE, Buffer.from(await dump.arrayBuffer()));
  } finally {
    await embedded.close();
  }
}
