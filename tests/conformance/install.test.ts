// The installer on every backend: it refuses a layer newer than its code, and an
// upgrade renders every listener's and vector index's code again. (Installing
// into an empty database, concurrent installers, the CLI's install and
// CREATE EXTENSION are the server's: tests/backends/postgres/.) Each test has a
// database of its own, a clone of the installed template.
import { describe, expect, it } from 'vitest';
import { listener } from '../../src/components/listener.js';
import { codeVersion } from '../../src/generated/sql.js';
import { install } from '../../src/install.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase } from '../helpers/database.js';

describe('superduper install', () => {
  it('refuses a database whose layer is newer than the code, changing nothing', async () => {
    const database = await createTestDatabase('install_newer');
    const superduper = await connectTest(database);
    const db = superduper.db;
    try {
      await install(db);
      await db.query(`UPDATE superduper._meta SET value = '99.0.0' WHERE key = 'code_version'`);
      await db.query(`CREATE OR REPLACE FUNCTION superduper._marker() RETURNS int LANGUAGE sql AS 'SELECT 1'`);
      await expect(install(db)).rejects.toThrow(/newer than this code/);
      await db.query(`UPDATE superduper._meta SET value = $1 WHERE key = 'code_version'`, [codeVersion]);
      await db.query(`INSERT INTO superduper._migrations VALUES (9999, 'future', 'x')`);
      await expect(install(db)).rejects.toThrow(/migration 9999\) is newer than this code/);
      const marker = await db.query(`SELECT superduper._marker() AS m`);
      expect(marker.rows[0]!.m).toBe(1);
    } finally {
      await superduper.close();
      await database.drop();
    }
  });

  it('an upgrade with other templates renders every listener and vector index again; an unchanged install touches none', async () => {
    const database = await createTestDatabase('install_rerender');
    const db = await connectTest(database);
    try {
      await db.install();
      await db.db.query(`CREATE TABLE docs (id int PRIMARY KEY, body text)`);
      await db.apply(
        functionModel({ name: 'two', output: { type: 'vector', dim: 2 }, predict: (texts: string[]) => texts.map((t) => [t.length, 1]) }),
        listener({ name: 'docs_two', model: 'two', table: 'docs', keys: ['body'] }),
        { type: 'vector_index', name: 'docs_index', listener: 'docs_two' },
      );
      const generated = `SELECT count(*)::int AS n FROM pg_proc WHERE pronamespace = 'superduper'::regnamespace AND proname ~ '^_(l|vi)[0-9]+_'`;
      const triggers = `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'docs'::regclass AND NOT tgisinternal`;
      const before = { functions: (await db.db.query<{ n: number }>(generated)).rows[0]!.n, triggers: (await db.db.query<{ n: number }>(triggers)).rows[0]!.n };
      expect(before.triggers).toBe(4);
      // Code as an older version left it: here, gone.
      await db.db.query(`SELECT superduper._listener_code_drop(id) FROM superduper._listeners`);
      await db.db.query(`DROP FUNCTION superduper._vi1_search, superduper._vi1_search_filtered`);
      await db.install(); // the same templates: nothing is rendered
      expect((await db.db.query<{ n: number }>(triggers)).rows[0]!.n).toBe(0);
      await db.db.query(`UPDATE superduper._meta SET value = 'from an older version' WHERE key = 'templates_sha256'`);
      await db.install();
      expect({ functions: (await db.db.query<{ n: number }>(generated)).rows[0]!.n, triggers: (await db.db.query<{ n: number }>(triggers)).rows[0]!.n }).toEqual(before);
      const hits = await db.db.query(`SELECT id FROM superduper.like('docs_index', '[3,1]'::vector, 1)`);
      expect(hits.rows).toEqual([]); // the table is empty; the search function is back
    } finally {
      await db.close();
      await database.drop();
    }
  });
});
