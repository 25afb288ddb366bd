import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { adminUri, TEMPLATE_DATABASE, uriFor } from './uris.js';

/**
 * Builds the SQL module, checks the project's PostgreSQL is up (make test starts
 * it), and builds a template database with the real installer; each test file
 * clones it (CREATE DATABASE ... TEMPLATE), which takes a fraction of a second.
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
  const { connectPostgres } = await import('../../src/backends/postgres.js');
  const { install } = await import('../../src/install.js');
  const db = await connectPostgres(uriFor(TEMPLATE_DATABASE));
  try {
    await install(db);
  } finally {
    await db.close();
  }
}
