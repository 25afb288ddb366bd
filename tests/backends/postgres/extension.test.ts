// superduper as a PostgreSQL extension (extension/, built by scripts/build-sql-module.mjs):
// ALTER EXTENSION superduper UPDATE from the previous release keeps every row and
// gives the schema a fresh CREATE EXTENSION gives; pg_dump and restore carry every
// row that holds state; dblink is optional, and adding it later is one script.
//
// These tests need the extension's files in PostgreSQL's share directory, as built
// from this checkout: "make test" installs them (make -C extension install) when it
// may write there (root, as in CI).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, createLogger, functionModel } from '../../../src/index.js';
import { adminUri, uriFor } from '../../helpers/uris.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const version: string = JSON.parse(readFileSync('package.json', 'utf8')).version;
const semver = (v: string) => v.split('.').map(Number) as [number, number, number];
const older = (a: string, b: string) => {
  const [x, y] = [semver(a), semver(b)];
  return x[0] !== y[0] ? x[0] < y[0] : x[1] !== y[1] ? x[1] < y[1] : x[2] < y[2];
};
/** The release users upgrade from: the newest frozen script older than this version. */
const previous = readdirSync('extension/released')
  .map((file) => /^superduper--(\d+\.\d+\.\d+)\.sql$/.exec(file)?.[1])
  .filter((v): v is string => v !== undefined && older(v, version))
  .sort((a, b) => (older(a, b) ? -1 : 1))
  .at(-1);

const shareDir = (() => {
  try {
    return join(execFileSync(`${PG_BIN}/pg_config`, ['--sharedir'], { encoding: 'utf8' }).trim(), 'extension');
  } catch {
    return null;
  }
})();
/** Every file "make -C extension install" installs, installed as built here. */
const installed = (() => {
  if (!shareDir) return false;
  const files = [
    ...readdirSync('extension').filter((f) => /^superduper.*\.(sql|control)$/.test(f)).map((f) => ({ from: join('extension', f), name: f })),
    ...readdirSync('extension/released').map((f) => ({ from: join('extension/released', f), name: f })),
  ];
  return files.every(({ from, name }) => existsSync(join(shareDir, name)) && readFileSync(join(shareDir, name), 'utf8') === readFileSync(from, 'utf8'));
})();

const created: string[] = [];
afterAll(async () => {
  const admin = new pg.Client({ connectionString: adminUri() });
  await admin.connect();
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

/** An empty database, and a client on it (closed with the test's databases). */
async function database(label: string): Promise<{ uri: string; sql: pg.Client }> {
  const name = `sdtest_ext_${label}_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUri() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  created.push(name);
  const uri = uriFor(name);
  const sql = new pg.Client({ connectionString: uri });
  await sql.connect();
  clients.push(sql);
  return { uri, sql };
}
const clients: pg.Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
});

/**
 * The catalog of what superduper made: the extension's members; every function
 * (signature, result, language, volatility, security, settings, privileges, body),
 * relation (columns, constraints, indexes, view bodies, options, privileges,
 * comments), sequence and type in schema superduper, members or not; the triggers
 * on any table; the dump configuration; the initial privileges pg_dump works from;
 * and the rows the extension script itself writes. Per-listener code carries the
 * number of its rendering (code_version), which is left out of its body.
 */
async function catalog(sql: pg.Client): Promise<string[]> {
  const result = await sql.query<{ item: string }>(`
    WITH ext AS (SELECT oid, extversion, extconfig, extcondition FROM pg_extension WHERE extname = 'superduper'),
    members AS (
      SELECT d.classid, d.objid FROM pg_depend d, ext
      WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
    rels AS (SELECT c.* FROM pg_class c WHERE c.relnamespace = 'superduper'::regnamespace)
    SELECT 'extension ' || extversion AS item FROM ext
    UNION ALL SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
    UNION ALL SELECT 'dumped ' || u.c::regclass::text || ' ' || u.cond FROM ext, unnest(extconfig, extcondition) AS u(c, cond)
    UNION ALL SELECT 'schema acl ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'superduper'
    UNION ALL SELECT 'init privs ' || pg_describe_object(classoid, objoid, objsubid) || ' ' || initprivs::text FROM pg_init_privs WHERE privtype = 'e'
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text || ' (' || pg_get_function_arguments(p.oid) || ') -> ' || coalesce(pg_get_function_result(p.oid), '')
           || ' ' || l.lanname || ' kind ' || p.prokind::text || ' volatility ' || p.provolatile::text || ' parallel ' || p.proparallel::text
           || CASE WHEN p.prosecdef THEN ' security definer' ELSE '' END || CASE WHEN p.proisstrict THEN ' strict' ELSE '' END
           || ' config ' || coalesce(p.proconfig::text, '') || ' acl ' || coalesce(p.proacl::text, '')
           || ' body ' || md5(regexp_replace(p.prosrc, '_enter_listener\\((\\d+), \\d+\\)', '_enter_listener(\\1, N)', 'g'))
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.pronamespace = 'superduper'::regnamespace
    UNION ALL
    SELECT 'relation ' || c.relname || ' kind ' || c.relkind::text || ' persistence ' || c.relpersistence::text || ' options ' || coalesce(c.reloptions::text, '')
           || ' acl ' || coalesce(c.relacl::text, '') || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '')
    FROM rels c WHERE c.relkind <> 'i'
    UNION ALL
    SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
           || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
           || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
    FROM rels c JOIN pg_attribute a ON a.attrelid = c.oid LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f') AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL SELECT 'constraint ' || c.relname || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid) FROM rels c JOIN pg_constraint co ON co.conrelid = c.oid
    UNION ALL SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN rels c ON c.oid = i.indrelid
    UNION ALL SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid) FROM rels c WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'sequence ' || c.relname || ' ' || format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' by ' || s.seqincrement
           || ' ' || s.seqmin || '..' || s.seqmax || ' cache ' || s.seqcache || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END
    FROM rels c JOIN pg_sequence s ON s.seqrelid = c.oid
    UNION ALL SELECT 'type ' || t.typname || ' ' || t.typtype::text FROM pg_type t
      WHERE t.typnamespace = 'superduper'::regnamespace AND t.typtype IN ('c', 'd', 'e', 'r')
        AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
    UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE NOT t.tgisinternal
    UNION ALL SELECT 'template ' || name || ' ' || md5(body) FROM superduper._templates
    UNION ALL SELECT 'migration ' || version || ' ' || name || ' ' || sha256 FROM superduper._migrations
    UNION ALL SELECT 'meta ' || key || ' = ' || value FROM superduper._meta
    UNION ALL SELECT 'model ' || name || ' ' || spec::text FROM superduper._models WHERE name = 'default-embedder'
    ORDER BY 1`);
  return result.rows.map((r) => r.item);
}

type Rows = Record<string, Array<Record<string, unknown>>>;

/** Every row of every table in schema superduper (outputs tables too), and each sequence's position. */
async function snapshot(sql: pg.Client): Promise<{ tables: Rows; sequences: Record<string, string | null> }> {
  const names = await sql.query<{ relname: string }>(
    `SELECT relname FROM pg_class WHERE relnamespace = 'superduper'::regnamespace AND relkind = 'r' ORDER BY relname`,
  );
  const tables: Rows = {};
  for (const { relname } of names.rows) {
    const rows = await sql.query<{ r: Record<string, unknown> }>(`SELECT to_jsonb(t) AS r FROM superduper.${pg.escapeIdentifier(relname)} AS t`);
    tables[relname] = rows.rows.map((row) => row.r).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  }
  const sequences = await sql.query<{ sequencename: string; last_value: string | null }>(
    `SELECT sequencename, last_value::text FROM pg_sequences WHERE schemaname = 'superduper'`,
  );
  return { tables, sequences: Object.fromEntries(sequences.rows.map((s) => [s.sequencename, s.last_value])) };
}

/** The rows of `after`, with only the columns `before` had (a migration may add columns). */
function project(before: Rows, after: Rows, drop: Record<string, string[]> = {}): { before: Rows; after: Rows } {
  const strip = (table: string, row: Record<string, unknown>, keys: string[]) =>
    Object.fromEntries(keys.filter((k) => !(drop[table] ?? []).includes(k)).map((k) => [k, row[k]]));
  const out = { before: {} as Rows, after: {} as Rows };
  for (const [table, rows] of Object.entries(before)) {
    const keys = rows[0] ? Object.keys(rows[0]) : [];
    out.before[table] = rows.map((r) => strip(table, r, keys));
    out.after[table] = (after[table] ?? []).map((r) => strip(table, r, keys));
  }
  return out;
}

// The model: a TypeScript function (runs in the sidecar this test starts), registered
// from SQL with the spec functionModel gives it, so that applying it again is a no-op.
const MODEL_SOURCE = 'extension-test-1';
const model = () =>
  functionModel({
    name: 'two',
    output: { type: 'vector', dim: 2 },
    version: MODEL_SOURCE,
    predict: (bodies: string[]) =>
      bodies.map((body) => {
        if (body === 'poison') throw new Error('poison row');
        return [body.length, 1];
      }),
  });

/** What a user declares, from SQL: two models (one with a stored file), a listener, a vector index. */
async function declare(sql: pg.Client): Promise<void> {
  await sql.query(`CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL)`);
  await sql.query(`INSERT INTO docs SELECT g, repeat('x', g) FROM generate_series(1, 10) AS g`);
  await sql.query(
    `SELECT superduper.apply(jsonb_build_array(
       jsonb_build_object('type', 'model', 'name', 'two', 'runtime', 'function', 'output', '{"type": "vector", "dim": 2}'::jsonb,
                          'config', jsonb_build_object('source', $1::text)),
       jsonb_build_object('type', 'model', 'name', 'stored', 'runtime', 'onnx', 'output', '{"type": "float"}'::jsonb,
                          'artifact', superduper.put_artifact('\\x6f6e6e782062797465732c206e6f742061206d6f64656c'::bytea)),
       '{"type": "listener", "name": "docs_two", "model": "two", "table": "docs", "keys": ["body"],
         "settings": {"chunk_size": 4, "max_attempts": 1}}'::jsonb,
       '{"type": "vector_index", "name": "docs_index", "listener": "docs_two"}'::jsonb))`,
    [MODEL_SOURCE],
  );
}

/** Starts a sidecar with the function model, waits until it has nothing left to do, stops it. */
async function runSidecar(uri: string): Promise<void> {
  const db = await connect(uri, { logger: createLogger('silent') });
  try {
    const [applied] = await db.apply(model());
    expect(applied).toMatchObject({ action: 'unchanged' });
    await db.start({ reconcileMs: 100 });
    await db.waitUntilIdle({ timeoutMs: 30_000 });
  } finally {
    await db.close();
  }
}

/** Every source row has its output from its current value, but the poison row, which failed. */
async function expectOutputsCurrent(sql: pg.Client, listener: string): Promise<void> {
  const rows = await sql.query<{ id: number; body: string; output: string | null }>(
    `SELECT d.id, d.body, o.output::text AS output FROM docs d LEFT JOIN superduper.${pg.escapeIdentifier(`out_${listener}`)} o USING (id) ORDER BY d.id`,
  );
  const failed = await sql.query<{ primary_key: unknown }>(`SELECT primary_key FROM superduper.failures WHERE listener = $1`, [listener]);
  expect(rows.rows.length).toBeGreaterThan(0);
  for (const row of rows.rows) {
    expect({ id: row.id, output: row.output }).toEqual({ id: row.id, output: row.body === 'poison' ? null : `[${row.body.length},1]` });
  }
  expect(failed.rows.map((f) => JSON.stringify(f.primary_key))).toEqual(rows.rows.filter((r) => r.body === 'poison').map((r) => JSON.stringify([String(r.id)])));
}

function psqlFile(uri: string, file: string) {
  return spawnSync(`${PG_BIN}/psql`, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', uri, '-f', file], { encoding: 'utf8' });
}

describe.runIf(installed && previous)(`CREATE EXTENSION superduper: ALTER EXTENSION UPDATE from ${previous}, pg_dump, dblink`, () => {
  it(`upgrades ${previous} to ${version} keeping every row, and gives the schema of a fresh ${version}`, async () => {
    const { uri, sql } = await database('upgrade');
    // As the release was installed: its control file required dblink.
    await sql.query(`CREATE EXTENSION vector; CREATE EXTENSION dblink; CREATE EXTENSION superduper VERSION '${previous}'`);
    await declare(sql);
    // A sidecar's work at the old version, done by hand with the listener's own
    // functions: the first range computed and written, the second claimed and in
    // flight (its lease runs out in a second), the rest still behind the cursor;
    // then changes in the queue and in the change log, one of them making row 1's
    // output stale.
    const chunk = await sql.query<{ sd_chunk: number; sd_stamp: string | null; p1: string; k1: string }>(
      `SELECT * FROM superduper._l1_claim_chunk('by-hand', '1 hour', 4)`,
    );
    expect(chunk.rows.map((r) => r.p1)).toEqual(['1', '2', '3', '4']);
    await sql.query(`SELECT superduper._l1_write($1, $2::text[]::vector[], $3, '{}', '{}', '{}', $4, '{}', '{}')`, [
      chunk.rows.map((r) => r.p1),
      chunk.rows.map((r) => `[${r.k1.length},1]`),
      chunk.rows.map((r) => r.sd_stamp),
      chunk.rows[0]!.sd_chunk,
    ]);
    await sql.query(`SELECT * FROM superduper._l1_claim_chunk('by-hand', '1 second', 4)`);
    await sql.query(`INSERT INTO docs VALUES (11, 'eleven'), (12, 'poison')`);
    await sql.query(`SELECT superduper._drain()`);
    await sql.query(`UPDATE docs SET body = 'changed' WHERE id = 1`);
    await sql.query(`INSERT INTO docs VALUES (13, 'thirteen')`);
    const work = await sql.query(`SELECT (SELECT count(*) FROM superduper._changes)::int AS log, (SELECT count(*) FROM superduper._queue)::int AS queue,
                                         (SELECT count(*) FROM superduper._backfill)::int AS in_flight, (SELECT count(*) FROM superduper._backfill_cursor)::int AS cursors`);
    expect(work.rows[0]).toEqual({ log: 2, queue: 2, in_flight: 1, cursors: 1 });

    // The next version's function script refuses an extension at another version.
    const refused = psqlFile(uri, join(shareDir!, 'superduper-functions.sql'));
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(`is for the superduper extension at version ${version}; this database has version ${previous}`);

    const scriptOwned = ['_templates', '_migrations', '_meta', '_component_types'];
    const before = await snapshot(sql);
    const codeVersion = await sql.query(`SELECT code_version FROM superduper._listeners WHERE name = 'docs_two'`);
    await sql.query(`ALTER EXTENSION superduper UPDATE`);
    const after = await snapshot(sql);
    expect((await sql.query(`SELECT extversion FROM pg_extension WHERE extname = 'superduper'`)).rows).toEqual([{ extversion: version }]);

    // Every row is still there (the listener's code was rendered again: its number went up by one).
    for (const table of scriptOwned) delete before.tables[table];
    const compared = project(before.tables, after.tables, { _listeners: ['code_version'] });
    expect(compared.after).toEqual(compared.before);
    // Sequences of tables the upgrade added (_training_deployments') are new and unused.
    const added = Object.keys(after.sequences).filter((name) => !(name in before.sequences));
    expect(added.map((name) => [name, after.sequences[name]])).toEqual(added.map((name) => [name, null]));
    for (const name of added) delete after.sequences[name];
    expect(after.sequences).toEqual(before.sequences);
    expect((await sql.query(`SELECT code_version FROM superduper._listeners WHERE name = 'docs_two'`)).rows[0].code_version).toBe(
      codeVersion.rows[0].code_version + 1,
    );

    // The schema is a fresh install's with the same declarations (whose code was
    // rendered again too, as the upgrade did), and the extension's members are a
    // fresh CREATE EXTENSION's: anything a later version drops or renames must be
    // dropped by a migration, and the listeners' code belongs to no extension.
    const reference = await database('upgrade_ref');
    await reference.sql.query(`CREATE EXTENSION vector; CREATE EXTENSION dblink; CREATE EXTENSION superduper`);
    await declare(reference.sql);
    await reference.sql.query(`SELECT superduper._render_all_code()`);
    const upgraded = await catalog(sql);
    expect(upgraded).toEqual(await catalog(reference.sql));
    const fresh = await database('upgrade_fresh');
    await fresh.sql.query(`CREATE EXTENSION vector; CREATE EXTENSION dblink; CREATE EXTENSION superduper`);
    const members = (items: string[]) => items.filter((item) => item.startsWith('member '));
    expect(members(upgraded)).toEqual(members(await catalog(fresh.sql)));

    // And it works: a sidecar of this version computes the rest of the backfill (the
    // range in flight, the rows behind the cursor), the queue and the log, replaces
    // row 1's stale output, fails the poison row, and the index searches.
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the range's lease runs out
    await runSidecar(uri);
    await expectOutputsCurrent(sql, 'docs_two');
    const hits = await sql.query(`SELECT id FROM superduper.like('docs_index', '[3,1]'::vector, 1)`);
    expect(hits.rows).toEqual([{ id: '3' }]);
  });

  it('pg_dump and restore carry every row that holds state, and the restored database goes on', async () => {
    const source = await database('dump_src');
    await source.sql.query(`CREATE EXTENSION vector; CREATE EXTENSION dblink; CREATE EXTENSION superduper`);
    await declare(source.sql);
    await source.sql.query(`INSERT INTO docs VALUES (11, 'poison')`);
    await runSidecar(source.uri);
    await expectOutputsCurrent(source.sql, 'docs_two');
    // Work left at the moment of the dump: a change in the queue, one in the change
    // log (both make outputs stale), a second listener's backfill not begun, and a
    // per-database setting in _meta.
    await source.sql.query(`UPDATE docs SET body = 'queued' WHERE id = 2`);
    await source.sql.query(`SELECT superduper._drain()`);
    await source.sql.query(`UPDATE docs SET body = 'in the log' WHERE id = 3`);
    await source.sql.query(
      `SELECT superduper.apply('{"type": "listener", "name": "docs_two_b", "model": "two", "table": "docs", "keys": ["body"], "settings": {"max_attempts": 1}}')`,
    );
    await source.sql.query(`INSERT INTO superduper._meta VALUES ('test.per_database', 'kept')`);

    // The decision for every table the migrations made: dumped, or not (and why, in
    // extension/config-dump.sql). A new table must be added to one of the two lists.
    const config = await source.sql.query<{ relname: string; dumped: boolean; kind: string }>(`
      SELECT c.relname, c.relkind AS kind, c.oid = ANY ((SELECT extconfig FROM pg_extension WHERE extname = 'superduper')::oid[]) AS dumped
      FROM pg_depend d JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass
      WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND c.relkind IN ('r', 'S')
        AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'superduper')
      ORDER BY c.relname`);
    const decided = (dumped: boolean, kind: string) => config.rows.filter((r) => r.dumped === dumped && r.kind === kind).map((r) => r.relname);
    expect(decided(true, 'r')).toEqual(['_application_components', '_applications', '_artifacts', '_backfill', '_backfill_cursor', '_changes', '_failures', '_listeners', '_meta', '_models', '_queue', '_schedule_runs', '_schedules', '_trainers', '_training_deployments', '_training_runs', '_vector_indexes']);
    expect(decided(false, 'r')).toEqual(['_answer_cache', '_answers', '_component_types', '_embed_cache', '_migrations', '_requests', '_templates', '_text_common_words', '_text_word_stats', '_workers']);
    // Identity sequences belong to their tables, not to the extension directly.
    const sequences = await source.sql.query<{ seq: string }>(
      `SELECT u.c::regclass::text AS seq FROM pg_extension, unnest(extconfig) AS u(c) WHERE extname = 'superduper' AND (SELECT relkind FROM pg_class WHERE oid = u.c) = 'S' ORDER BY 1`,
    );
    expect(sequences.rows.map((r) => r.seq)).toEqual(['superduper._change_id', 'superduper._listeners_id_seq', 'superduper._training_deployments_id_seq', 'superduper._vector_indexes_id_seq']);

    const dir = mkdtempSync(join(tmpdir(), 'sd-dump-'));
    try {
      execFileSync(`${PG_BIN}/pg_dump`, ['-Fc', '-f', join(dir, 'dump'), '-d', source.uri]);
      const target = await database('dump_dst');
      execFileSync(`${PG_BIN}/pg_restore`, ['--exit-on-error', '-d', target.uri, join(dir, 'dump')], { stdio: 'pipe' });

      // Rows of tables not dumped, and the rows the extension script writes (compared
      // by the catalog below, without their timestamps), are left out.
      const notDumped = ['_answers', '_embed_cache', '_requests', '_workers', '_migrations', '_templates', '_component_types'];
      const [was, is] = [await snapshot(source.sql), await snapshot(target.sql)];
      for (const snap of [was, is]) {
        for (const table of notDumped) delete snap.tables[table];
        snap.tables._models = snap.tables._models!.filter((m) => m.name !== 'default-embedder');
        snap.tables._meta = snap.tables._meta!.filter((m) => m.key !== 'code_version');
      }
      expect(is.tables).toEqual(was.tables);
      const dumpedSequences = { _change_id: was.sequences._change_id, _listeners_id_seq: was.sequences._listeners_id_seq, _vector_indexes_id_seq: was.sequences._vector_indexes_id_seq };
      expect(is.sequences).toMatchObject(dumpedSequences);
      // The same schema: the extension's objects, and the listeners' own code
      // (triggers, claim and write functions, search functions), each once.
      expect(await catalog(target.sql)).toEqual(await catalog(source.sql));

      // The restored database goes on where the dump left off: the queued and logged
      // changes replace stale outputs (their stamps continue from the dump's), the
      // second listener backfills, and a new listener gets an id of its own.
      const stampBefore = await target.sql.query(`SELECT max(_stamp)::int AS s FROM superduper.out_docs_two`);
      await runSidecar(target.uri);
      await expectOutputsCurrent(target.sql, 'docs_two');
      await expectOutputsCurrent(target.sql, 'docs_two_b');
      const stampAfter = await target.sql.query(`SELECT max(_stamp)::int AS s FROM superduper.out_docs_two`);
      expect(stampAfter.rows[0].s).toBeGreaterThan(stampBefore.rows[0].s);
      await target.sql.query(`SELECT superduper.apply('{"type": "listener", "name": "docs_two_c", "model": "two", "table": "docs", "keys": ["body"]}')`);
      const ids = await target.sql.query(`SELECT name, id FROM superduper._listeners ORDER BY id`);
      expect(ids.rows).toEqual([
        { name: 'docs_two', id: 1 },
        { name: 'docs_two_b', id: 2 },
        { name: 'docs_two_c', id: 3 },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('needs no dblink; with dblink added later, superduper-functions.sql gives what CREATE EXTENSION after dblink gives', async () => {
    const { uri, sql } = await database('no_dblink');
    await sql.query(`CREATE EXTENSION superduper CASCADE`);
    const extensions = await sql.query(`SELECT extname FROM pg_extension ORDER BY extname`);
    expect(extensions.rows.map((r) => r.extname)).toEqual(['plpgsql', 'superduper', 'vector']);
    await sql.query(`SELECT superduper.apply(jsonb_build_object('type', 'model', 'name', 'two', 'runtime', 'function',
                       'output', '{"type": "vector", "dim": 2}'::jsonb, 'config', jsonb_build_object('source', $1::text)))`, [MODEL_SOURCE]);
    // Without dblink a model call from SQL says so (what the installer gives too).
    await expect(sql.query(`SELECT superduper.embed('two', 'abc')`)).rejects.toMatchObject({ code: 'SDM01' });

    await sql.query(`CREATE EXTENSION dblink`);
    const run = psqlFile(uri, join(shareDir!, 'superduper-functions.sql'));
    expect(run.stderr.split('\n').filter((line) => /ERROR|FATAL/.test(line))).toEqual([]);
    expect(run.status).toBe(0);

    const withDblink = await database('with_dblink');
    await withDblink.sql.query(`CREATE EXTENSION dblink; CREATE EXTENSION superduper CASCADE`);
    await withDblink.sql.query(`SELECT superduper.apply(jsonb_build_object('type', 'model', 'name', 'two', 'runtime', 'function',
                       'output', '{"type": "vector", "dim": 2}'::jsonb, 'config', jsonb_build_object('source', $1::text)))`, [MODEL_SOURCE]);
    expect(await catalog(sql)).toEqual(await catalog(withDblink.sql));

    // Model calls from SQL now reach a sidecar.
    const db = await connect(uri, { logger: createLogger('silent') });
    try {
      await db.apply(model());
      await db.start({ reconcileMs: 100 });
      const embedded = await sql.query(`SELECT superduper.embed('two', 'abc')::text AS v`);
      expect(embedded.rows).toEqual([{ v: '[3,1]' }]);
    } finally {
      await db.close();
    }
  });
});

if (!(installed && previous)) {
  it.skip(`needs the extension files built here installed in ${shareDir ?? "PostgreSQL's share directory"} (make -C extension install) and a release older than ${version} in extension/released/`, () => {});
}
