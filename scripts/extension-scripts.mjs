// The PostgreSQL extension's files, from the SQL that scripts/build-sql-module.mjs
// has read (nothing here is SQL of its own, only assembly and checks):
//
//   extension/superduper--<version>.sql      CREATE EXTENSION superduper
//   extension/superduper--<A>--<version>.sql ALTER EXTENSION superduper UPDATE, from
//                                            every released version A
//   extension/superduper.control
//
// A released version's script is frozen in extension/released/superduper--<A>.sql
// (installed by "make -C extension install" too: an upgrade starts from it), and
// the migrations it ran are frozen by sql/migrations/released.sha256. See
// sql/README.md, "Releases and upgrades".
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const migrationFile = (m) => `${String(m.version).padStart(6, '0')}_${m.name}.sql`;
const versionKey = (v) => v.split('.').map(Number);
const compareVersions = (a, b) => {
  const [x, y] = [versionKey(a), versionKey(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
};

/** The lines of sql/migrations/released.sha256: `<sha256>  <file>` (sha256sum's format; # starts a comment). */
function readReleasedList(root) {
  const path = join(root, 'sql/migrations/released.sha256');
  const entries = new Map();
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, index) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      const match = /^([0-9a-f]{64}) [ *](\d{6}_[a-z0-9_]+\.sql)$/.exec(line);
      if (!match) throw new Error(`sql/migrations/released.sha256, line ${index + 1}: expected "<sha256>  <NNNNNN_name.sql>", got ${JSON.stringify(line)}`);
      if (entries.has(match[2])) throw new Error(`sql/migrations/released.sha256: ${match[2]} is listed twice`);
      entries.set(match[2], match[1]);
    });
  return entries;
}

/** Released versions, oldest first: their frozen scripts and the migrations (ledger rows) each ran. */
function readReleases(root) {
  const dir = join(root, 'extension/released');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((file) => ({ file, match: /^superduper--(\d+\.\d+\.\d+)\.sql$/.exec(file) }))
    .filter(({ match }) => match)
    .map(({ file, match }) => {
      const script = readFileSync(join(dir, file), 'utf8');
      const ledger = [...script.matchAll(/^INSERT INTO superduper\._migrations \(version, name, sha256\) VALUES \((\d+), '([a-z0-9_]+)', '([0-9a-f]{64})'\);$/gm)].map(
        (row) => ({ version: Number(row[1]), name: row[2], sha256: row[3] }),
      );
      if (ledger.length === 0) throw new Error(`extension/released/${file}: no migration ledger rows found (is it a superduper extension script?)`);
      return { version: match[1], file, script, ledger };
    })
    .sort((a, b) => compareVersions(a.version, b.version));
}

/**
 * Released migrations are frozen: each migration listed in released.sha256 must
 * exist with the same SHA-256 (of the SQL that runs), and every migration a frozen
 * release script ran must be listed. Throws naming the file otherwise.
 */
export function checkReleasedMigrations(root, migrations) {
  const listed = readReleasedList(root);
  const byFile = new Map(migrations.map((m) => [migrationFile(m), m]));
  for (const [file, hash] of listed) {
    const m = byFile.get(file);
    if (!m) {
      throw new Error(
        `sql/migrations/${file} was released (it is listed in sql/migrations/released.sha256) and is gone or renamed. ` +
          `Released migrations are frozen: restore it, and put the change in a new migration.`,
      );
    }
    const now = sha256(m.sql);
    if (now !== hash) {
      throw new Error(
        `sql/migrations/${file} was released (sql/migrations/released.sha256) and has changed: its SHA-256 is now ${now}, released ${hash}. ` +
          `Released migrations are frozen (databases have run them already): undo the change, and put it in a new migration.`,
      );
    }
  }
  for (const release of readReleases(root)) {
    for (const row of release.ledger) {
      const file = migrationFile(row);
      if (listed.get(file) !== row.sha256) {
        throw new Error(
          `extension/released/${release.file} ran migration ${file} (SHA-256 ${row.sha256}), which sql/migrations/released.sha256 ` +
            (listed.has(file) ? `lists with another hash (${listed.get(file)})` : `does not list`) +
            `: every migration of a released version must be listed there with the hash it was released with.`,
        );
      }
    }
  }
}

// Template bodies are inserted as dollar-quoted literals with a tag they do not contain.
const dollar = (text) => {
  let tag = '$tpl$';
  for (let i = 0; text.includes(tag); i++) tag = `$tpl${i}$`;
  return `${tag}${text}${tag}`;
};

const migrationSection = (m) =>
  `-- migration ${m.version}: ${m.name}\n${m.sql}\nINSERT INTO superduper._migrations (version, name, sha256) VALUES (${m.version}, '${m.name}', '${m.sha256}');`;

/** Functions, views, templates and the code version: what the installer's installCode runs. */
const codeSections = ({ version, functions, templates }) => [
  ...functions.map((f) => `-- functions: ${f.name}\n${f.sql}`),
  ...Object.entries(templates).map(
    ([name, body]) =>
      `INSERT INTO superduper._templates (name, body) VALUES ('${name}', ${dollar(body)}) ON CONFLICT (name) DO UPDATE SET body = excluded.body;`,
  ),
  `INSERT INTO superduper._meta (key, value) VALUES ('code_version', '${version}') ON CONFLICT (key) DO UPDATE SET value = excluded.value;`,
];

// After an upgrade the listeners' and vector indexes' code is rendered again from
// the new templates, as the installer does when the templates changed. Whatever an
// extension script creates becomes a member of the extension, but this code belongs
// to the user's listeners (pg_dump must dump it, DROP EXTENSION must not take it
// silently, a fresh CREATE EXTENSION has none of it), so the objects the rendering
// created are released from the extension again.
const renderSection = `-- listeners' and vector indexes' code, rendered from the new templates
DO $render$
DECLARE
  v_extension oid := (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'superduper');
  v_members text[];
  v_object record;
BEGIN
  v_members := ARRAY(SELECT d.classid || ':' || d.objid FROM pg_catalog.pg_depend AS d
                     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                       AND d.refobjid = v_extension AND d.deptype = 'e');
  PERFORM superduper._render_all_code();
  FOR v_object IN
    SELECT o.type, o.identity
    FROM pg_catalog.pg_depend AS d, LATERAL pg_catalog.pg_identify_object(d.classid, d.objid, 0) AS o
    WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
      AND d.refobjid = v_extension AND d.deptype = 'e'
      AND NOT (d.classid || ':' || d.objid) = ANY (v_members)
  LOOP
    EXECUTE pg_catalog.format('ALTER EXTENSION superduper DROP %s %s', v_object.type, v_object.identity);
  END LOOP;
END
$render$;`;

// Run by hand (psql -f) in a database that has the extension at this version: the
// function files again, as "superduper install" runs them on every install. For
// what they detect when they run, dblink above all (CREATE EXTENSION dblink after
// CREATE EXTENSION superduper). Objects they create anew are made members of the
// extension, as if CREATE EXTENSION had created them (a replaced function stays a
// member by itself).
const functionsScript = ({ version, functions }) =>
  [
    [
      `-- DO NOT EDIT. Generated by scripts/build-sql-module.mjs (scripts/extension-scripts.mjs) from sql/functions/.`,
      `-- The function files of superduper ${version} again, for a database that has the extension at that version,`,
      `-- e.g. after CREATE EXTENSION dblink (see docs/sql.md, "Installing"):`,
      `--   psql -v ON_ERROR_STOP=1 -d <database> -f "$(pg_config --sharedir)/extension/superduper-functions.sql"`,
      `-- One transaction: an error changes nothing.`,
      `BEGIN;`,
    ].join('\n'),
    `DO $check$
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(1399157348, 0);  -- the installer's lock
  IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'superduper') IS DISTINCT FROM '${version}' THEN
    RAISE EXCEPTION 'superduper-functions.sql is for the superduper extension at version ${version}; this database has %',
      coalesce('version ' || (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'superduper'), 'no superduper extension')
      USING HINT = 'ALTER EXTENSION superduper UPDATE runs the function files of the new version.';
  END IF;
END
$check$;`,
    `CREATE TEMPORARY TABLE _superduper_before ON COMMIT DROP AS
  SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass::oid AS classid, p.oid AS objid FROM pg_catalog.pg_proc AS p WHERE p.pronamespace = 'superduper'::pg_catalog.regnamespace
  UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid, c.oid FROM pg_catalog.pg_class AS c WHERE c.relnamespace = 'superduper'::pg_catalog.regnamespace
  UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::oid, t.oid FROM pg_catalog.pg_type AS t WHERE t.typnamespace = 'superduper'::pg_catalog.regnamespace;`,
    ...functions.map((f) => `-- functions: ${f.name}\n${f.sql}`),
    `DO $members$
DECLARE
  v_object record;
BEGIN
  FOR v_object IN
    SELECT pg_catalog.format('ROUTINE %s', p.oid::pg_catalog.regprocedure) AS what FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace = 'superduper'::pg_catalog.regnamespace
      AND (p.tableoid, p.oid) NOT IN (SELECT classid, objid FROM _superduper_before)
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'VIEW ' WHEN 'm' THEN 'MATERIALIZED VIEW ' WHEN 'c' THEN 'TYPE ' WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || c.oid::pg_catalog.regclass
    FROM pg_catalog.pg_class AS c
    WHERE c.relnamespace = 'superduper'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'S')
      AND (c.tableoid, c.oid) NOT IN (SELECT classid, objid FROM _superduper_before)
    UNION ALL
    SELECT pg_catalog.format('TYPE %s', t.oid::pg_catalog.regtype) FROM pg_catalog.pg_type AS t
    WHERE t.typnamespace = 'superduper'::pg_catalog.regnamespace AND t.typtype IN ('d', 'e', 'r') AND t.typelem = 0
      AND (t.tableoid, t.oid) NOT IN (SELECT classid, objid FROM _superduper_before)
  LOOP
    IF v_object.what ~ '^(TABLE|SEQUENCE) ' THEN
      RAISE EXCEPTION 'superduper-functions.sql: the function files created %, which only a migration may create', v_object.what;
    END IF;
    EXECUTE 'ALTER EXTENSION superduper ADD ' || v_object.what;
  END LOOP;
END
$members$;`,
    `COMMIT;`,
    ``,
  ].join('\n\n');

const header = (command) => [
  `-- DO NOT EDIT. Generated by scripts/build-sql-module.mjs (scripts/extension-scripts.mjs) from sql/ and triggers/.`,
  `\\echo Use "${command}" to load this file. \\quit`,
];

/**
 * Writes the extension's scripts and control file. `migrations`, `functions`,
 * `templates`, `bootstrap` are the SQL the installer runs (src/generated/sql.ts),
 * in the same order.
 */
export function writeExtension(root, { version, bootstrap, migrations, functions, templates }) {
  const configDump = readFileSync(join(root, 'extension/config-dump.sql'), 'utf8');
  const code = codeSections({ version, functions, templates });

  // CREATE EXTENSION: the same bootstrap, migrations (with their ledger rows),
  // functions and templates, in the same order the installer runs them.
  const fresh = [...header('CREATE EXTENSION superduper'), bootstrap, ...migrations.map(migrationSection), ...code, configDump].join('\n\n');
  const written = { [`superduper--${version}.sql`]: fresh, 'superduper-functions.sql': functionsScript({ version, functions }) };

  // ALTER EXTENSION ... UPDATE from each released version: the migrations it had
  // not run, then everything that is rerun on every install.
  for (const release of readReleases(root)) {
    const order = compareVersions(release.version, version);
    if (order > 0) throw new Error(`extension/released/${release.file} is newer than package.json's version ${version}`);
    if (order === 0) {
      if (release.script !== fresh) {
        throw new Error(
          `version ${version} is released (extension/released/${release.file}) but the SQL built from the sources differs from it: ` +
            `bump the version in package.json (and package-lock.json) before changing the SQL.`,
        );
      }
      continue;
    }
    const last = Math.max(...release.ledger.map((m) => m.version));
    const released = new Map(release.ledger.map((m) => [m.version, m]));
    for (const m of migrations.filter((m) => m.version <= last)) {
      if (released.get(m.version)?.sha256 !== m.sha256) {
        throw new Error(`sql/migrations/${migrationFile(m)} differs from the migration ${m.version} that ${release.version} ran (extension/released/${release.file})`);
      }
    }
    written[`superduper--${release.version}--${version}.sql`] = [
      ...header('ALTER EXTENSION superduper UPDATE'),
      `-- From ${release.version} (its last migration: ${last}) to ${version}.`,
      bootstrap,
      ...migrations.filter((m) => m.version > last).map(migrationSection),
      ...code,
      renderSection,
      configDump,
    ].join('\n\n');
  }

  // Scripts of earlier builds would be installed next to these (and a version's
  // script next to its frozen copy): every superduper--*.sql here is generated.
  const dir = join(root, 'extension');
  for (const file of readdirSync(dir)) {
    if (/^superduper--.*\.sql$/.test(file) && !(file in written)) rmSync(join(dir, file));
  }
  for (const [file, text] of Object.entries(written)) writeFileSync(join(dir, file), text);
  writeFileSync(
    join(dir, 'superduper.control'),
    [
      `# DO NOT EDIT. Generated by scripts/build-sql-module.mjs.`,
      `comment = 'superduper: AI models kept current on your tables, vector search from SQL'`,
      `default_version = '${version}'`,
      `schema = superduper`,
      `relocatable = false`,
      // dblink is optional, as for the installer: model calls from SQL need it and
      // use it when it exists when the functions are created (CREATE EXTENSION
      // dblink first). See docs/sql.md, "Installing".
      `requires = 'vector'`,
      ``,
    ].join('\n'),
  );
  return Object.keys(written);
}
