import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';

/**
 * Builds the SQL module, checks the project's PostgreSQL is up (make test starts
 * it), and builds a template database with the real installer; each test file
 * clones it (CREATE DATABASE ... TEMPLATE), which takes a fraction of a second;
 * and an embedded (PGlite) template, for the tests that also run on PGlite.
 */
export default async function setup(): Promise<void> {
  execFileSync(process.execPath, ['scripts/build-sql-module.mjs'], { stdio: 'ignore' });
  // The template is named after the SQL it is built from (read once, here; test
  // files learn the name from the environment): a run of the same SQL reuses
  // it, and concurrent runs of different SQL never drop each other's.
  const built = createHash('sha256');
  for (const file of ['src/generated/sql.ts', 'src/backends/postgres/install.ts']) built.update(readFileSync(file));
  process.env.SUPERDUPER_TEST_TEMPLATE = `superduper_test_template_${built.digest('hex').slice(0, 12)}`;
  const { adminUri, PGLITE_TEMPLATE_FILE, TEMPLATE_DATABASE, uriFor } = await import('./uris.js');
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
    // One builder at a time (a lock of the tests' own, in superduper's
    // namespace); a template that is there was built whole (it is renamed into
    // place only after its install).
    await admin.query('SELECT pg_advisory_lock($1, 99)', [1399157348]);
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [TEMPLATE_DATABASE]);
    if (found.rows.length === 0) {
      const building = `${TEMPLATE_DATABASE}_building`;
      await admin.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${building}`);
      // Imported here so that the generated SQL module exists first.
      const { connectPostgres } = await import('../../src/backends/postgres/driver.js');
      const { install } = await import('../../src/install.js');
      const db = await connectPostgres(uriFor(building));
      try {
        await install(db);
      } finally {
        await db.close();
      }
      await admin.query(`ALTER DATABASE ${building} RENAME TO ${TEMPLATE_DATABASE}`);
      await admin.query(`COMMENT ON DATABASE ${TEMPLATE_DATABASE} IS 'built ${Math.floor(Date.now() / 1000)}'`);
    }
    // Templates of other SQL, built more than a day ago: dropped (one in use
    // stays). A younger one may belong to a run under way that has not cloned
    // it yet.
    const others = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database
       WHERE datname LIKE 'superduper\\_test\\_template%' AND datname <> $1
         AND coalesce(substring(shobj_description(oid, 'pg_database') FROM '^built (\\d+)$')::bigint, 0) < $2`,
      [TEMPLATE_DATABASE, Math.floor(Date.now() / 1000) - 86_400],
    );
    for (const { datname } of others.rows) await admin.query(`DROP DATABASE IF EXISTS "${datname}"`).catch(() => {});
    if (!existsSync(PGLITE_TEMPLATE_FILE)) await buildEmbeddedTemplate(PGLITE_TEMPLATE_FILE);
    const folder = dirname(PGLITE_TEMPLATE_FILE);
    for (const file of readdirSync(folder)) {
      const path = join(folder, file);
      const stale = /^pglite-superduper_test_template.*\.tar$/.test(file) && path !== PGLITE_TEMPLATE_FILE && statSync(path).mtimeMs < Date.now() - 86_400_000;
      if (stale) rmSync(path, { force: true });
    }
  } finally {
    await admin.end();
  }
}

/** The same for the embedded database: installed once, dumped, opened from the dump by each test file. */
async function buildEmbeddedTemplate(file: string): Promise<void> {
  const { EmbeddedDatabase } = await import('../../src/backends/pglite/driver.js');
  const { install } = await import('../../src/install.js');
  const embedded = await EmbeddedDatabase.open();
  try {
    await install(embedded);
    const dump = await embedded.dump();
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.part`, Buffer.from(await dump.arrayBuffer()));
    renameSync(`${file}.part`, file);
  } finally {
    await embedded.close();
  }
}
