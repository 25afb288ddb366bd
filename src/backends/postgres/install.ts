import { createHash } from 'node:crypto';
import type { InstallResult } from '../types.js';
import type { Queryable, SqlDriver } from './sql-driver.js';
import { SuperduperError } from '../../errors.js';
import { bootstrapSql, codeVersion, functionFiles, migrations, schemaSql, templates } from '../../generated/sql.js';
import { compareLayer, compareVersions, describeCode, describeLayer } from '../../layer-version.js';
import { LOCKS } from '../../generated/constants.js';


/** Advisory lock key taken by every install step: one installer at a time. */
const INSTALL_LOCK = `SELECT pg_catalog.pg_advisory_xact_lock(${LOCKS.namespace}, ${LOCKS.install})`;


/**
 * Installs or upgrades the SQL layer (schema `superduper`) in a database. Safe to
 * run any number of times and from several processes at once: each migration runs
 * in its own transaction under an advisory lock and is recorded in
 * `superduper._migrations`; the functions are recreated afterwards. Refuses to
 * touch a database whose layer is newer than this code.
 */
export async function installLayer(db: SqlDriver, options: { dblinkExpected: boolean }): Promise<InstallResult> {
  const warnings: string[] = [];
  // Under the install lock: two installers creating pgvector at once would
  // otherwise collide in pg_extension.
  const extensions = await db.transaction(async (tx) => {
    await tx.query(INSTALL_LOCK);
    return ensureExtensions(tx, warnings, options.dblinkExpected);
  });

  const extension = await db.query<{ extversion: string }>(
    `SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'superduper'`,
  );
  if (extension.rows[0]) {
    const installedVersion = extension.rows[0].extversion;
    if (compareVersions(installedVersion, codeVersion) < 0) {
      throw new SuperduperError(
        `superduper is installed in this database as an extension (version ${installedVersion}), older than this code (${codeVersion})`,
        { hint: `On the database host run "make -C extension install", then in the database: ALTER EXTENSION superduper UPDATE;` },
      );
    }
    await checkNotNewer(db);
    return { applied: [], codeVersion, via: 'extension', extensions, warnings };
  }

  await db.transaction(async (tx) => {
    await tx.query(INSTALL_LOCK);
    await tx.query(schemaSql);
    await tx.query(bootstrapSql);
  });
  await checkNotNewer(db);

  const applied: number[] = [];
  for (const migration of migrations) {
    const ran = await db.transaction(async (tx) => {
      await tx.query(INSTALL_LOCK);
      const done = await tx.query<{ sha256: string }>(
        'SELECT sha256 FROM superduper._migrations WHERE version = $1',
        [migration.version],
      );
      if (done.rows[0]) {
        if (done.rows[0].sha256 !== migration.sha256) {
          warnings.push(`migration ${migration.version} (${migration.name}) differs from the one applied to this database`);
        }
        return false;
      }
      await tx.query(migration.sql);
      await tx.query('INSERT INTO superduper._migrations (version, name, sha256) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.sha256,
      ]);
      return true;
    });
    if (ran) applied.push(migration.version);
  }

  await db.transaction(async (tx) => {
    await tx.query(INSTALL_LOCK);
    await installCode(tx);
  });
  await db.refreshTypes();
  return { applied, codeVersion, via: 'installer', extensions, warnings };
}

/** Functions, views and templates: recreated on every install. */
async function installCode(tx: Queryable): Promise<void> {
  for (const file of functionFiles) {
    await tx.query(file.sql);
  }
  for (const [name, body] of Object.entries(templates)) {
    await tx.query(
      `INSERT INTO superduper._templates (name, body) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET body = excluded.body`,
      [name, body],
    );
  }
  await tx.query(
    `INSERT INTO superduper._meta (key, value) VALUES ('code_version', $1)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    [codeVersion],
  );
  // Listeners and vector indexes rendered from other templates (an upgrade) get
  // their code rendered again; an unchanged install touches no source table.
  const rendered = await tx.query<{ value: string }>(`SELECT value FROM superduper._meta WHERE key = 'templates_sha256'`);
  if (rendered.rows[0]?.value !== templatesHash) {
    await tx.query('SELECT superduper._render_all_code()');
    await tx.query(
      `INSERT INTO superduper._meta (key, value) VALUES ('templates_sha256', $1)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      [templatesHash],
    );
  }
}

/** One hash of every template: what the database's generated code was rendered from. */
const templatesHash = createHash('sha256')
  .update(JSON.stringify(Object.entries(templates).sort(([a], [b]) => a.localeCompare(b))))
  .digest('hex');

async function checkNotNewer(db: Queryable): Promise<void> {
  const state = await db.query<{ migration: number | null; code_version: string | null }>(
    `SELECT (SELECT max(version) FROM superduper._migrations) AS migration,
            (SELECT value FROM superduper._meta WHERE key = 'code_version') AS code_version`,
  );
  const layer = state.rows[0] ?? { migration: null, code_version: null };
  if (compareLayer(layer) === 'newer') {
    throw new SuperduperError(
      `this database's superduper layer (${describeLayer(layer)}) is newer than this code (${describeCode()}); nothing was changed`,
      { hint: 'Upgrade the superduper package on this machine.', code: 'SUPERDUPER_NEWER_DATABASE' },
    );
  }
}

/**
 * pgvector is required (outputs are vector columns); dblink is needed only for
 * superduper.embed/like called from SQL sessions, so its absence is a warning.
 */
async function ensureExtensions(db: Queryable, warnings: string[], dblinkExpected: boolean): Promise<InstallResult['extensions']> {
  const available = await db.query<{ name: string; installed_version: string | null }>(
    `SELECT name, installed_version FROM pg_catalog.pg_available_extensions WHERE name IN ('vector', 'dblink')`,
  );
  const find = (name: string) => available.rows.find((row) => row.name === name);
  const vector = find('vector');
  if (!vector) {
    throw new SuperduperError('pgvector is not installed on this PostgreSQL server (extension "vector" is not available)', {
      hint:
        'Install pgvector on the database server (Debian/Ubuntu: apt install postgresql-<version>-pgvector; ' +
        'or build it from https://github.com/pgvector/pgvector), then run install again.',
      code: 'SUPERDUPER_NO_PGVECTOR',
    });
  }
  const create = async (name: string) => {
    try {
      await db.query(`CREATE EXTENSION IF NOT EXISTS ${name}`);
    } catch (error) {
      throw new SuperduperError(`could not create extension "${name}": ${(error as Error).message}`, {
        hint: `Ask a superuser to run CREATE EXTENSION ${name}; in this database, then run install again.`,
        cause: error,
      });
    }
  };
  if (!vector.installed_version) await create('vector');
  const dblink = find('dblink');
  if (dblink && !dblink.installed_version) await create('dblink');
  // A database hosted in this process has no dblink: the process answers model calls instead.
  if (!dblink && dblinkExpected) {
    warnings.push(
      'dblink is not available on this server: superduper.embed() and text queries in superduper.like() will not work from SQL sessions ' +
        '(install PostgreSQL contrib to enable them); everything else works.',
    );
  }
  const versions = await db.query<{ extname: string; extversion: string }>(
    `SELECT extname, extversion FROM pg_catalog.pg_extension WHERE extname IN ('vector', 'dblink')`,
  );
  const version = (name: string) => versions.rows.find((row) => row.extname === name)?.extversion ?? null;
  return { vector: version('vector') ?? '?', dblink: version('dblink') };
}
