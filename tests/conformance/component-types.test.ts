import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { SPEC_VERSIONS } from '../../src/generated/constants.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;

beforeAll(async () => {
  database = await createTestDatabase('component_types');
  db = await connectTest(database);
  await database.sql.query('CREATE TABLE docs (id int PRIMARY KEY, body text)');
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

const stored = async (view: string, name: string) =>
  (await database.sql.query<{ spec_version: number }>(`SELECT spec_version FROM superduper.${view} WHERE name = $1`, [name])).rows;

describe('component types come from a table', () => {
  it('a type registered in superduper._component_types is applied and removed like the built-in ones', async () => {
    // A type of our own, as a later issue's SQL file would add one: a registry
    // table, its two functions, its row.
    await database.sql.query(`
      CREATE TABLE superduper._notes (name text PRIMARY KEY, body text NOT NULL, spec_version integer NOT NULL DEFAULT 1);
      CREATE FUNCTION superduper._apply_note(p_spec jsonb, p_search_path text[]) RETURNS jsonb LANGUAGE sql AS $$
        INSERT INTO superduper._notes (name, body) VALUES (p_spec ->> 'name', p_spec ->> 'body')
        ON CONFLICT (name) DO UPDATE SET body = excluded.body
        RETURNING jsonb_build_object('type', 'note', 'name', name, 'action', 'created')
      $$;
      CREATE FUNCTION superduper._remove_note(p_name text, p_keep_outputs boolean, p_cascade boolean) RETURNS jsonb LANGUAGE sql AS $$
        DELETE FROM superduper._notes WHERE name = p_name
        RETURNING jsonb_build_array(jsonb_build_object('type', 'note', 'name', name, 'action', 'removed'))
      $$;
      INSERT INTO superduper._component_types (type, label, registry_table, lookup_order, spec_version)
      VALUES ('note', 'note', '_notes', 90, 1);`);
    try {
      expect(await db.apply({ type: 'note', name: 'hello', body: 'a note' })).toEqual([{ type: 'note', name: 'hello', action: 'created' }]);
      expect((await database.sql.query('SELECT body FROM superduper._notes')).rows).toEqual([{ body: 'a note' }]);
      await expect(db.remove('nothing')).rejects.toThrow(/no application, listener, vector index, trainer, model, schedule or note named 'nothing'/);
      await expect(db.apply({ type: 'nope', name: 'x' })).rejects.toThrow(/unknown component type 'nope'/);
      await expect(db.apply({ type: 'nope', name: 'x' })).rejects.toMatchObject({ hint: 'Known types: application, listener, vector_index, trainer, model, schedule, note.' });
      expect(await db.remove('hello')).toEqual([{ type: 'note', name: 'hello', action: 'removed' }]);
    } finally {
      await database.sql.query(`DELETE FROM superduper._component_types WHERE type = 'note';
        DROP FUNCTION superduper._apply_note(jsonb, text[]); DROP FUNCTION superduper._remove_note(text, boolean, boolean);
        DROP TABLE superduper._notes;`);
    }
  });
});

describe('spec versions', () => {
  it('every stored spec carries the version it was written in', async () => {
    await db.apply(listener({ name: 'docs_plain', table: 'docs', keys: ['body'] }), { type: 'vector_index', name: 'docs_plain_index', listener: 'docs_plain' });
    expect(await stored('listeners', 'docs_plain')).toEqual([{ spec_version: SPEC_VERSIONS.listener }]);
    expect(await stored('vector_indexes', 'docs_plain_index')).toEqual([{ spec_version: SPEC_VERSIONS.vector_index }]);
    expect(await stored('models', 'default-embedder')).toEqual([{ spec_version: SPEC_VERSIONS.model }]);
  });

  it('a spec saying the current version is the same spec; saying none means the current one', async () => {
    const spec = { type: 'listener', name: 'docs_versioned', table: 'docs', keys: ['body'] };
    expect(await db.apply({ ...spec, spec_version: SPEC_VERSIONS.listener })).toMatchObject([{ action: 'created' }]);
    expect(await db.apply(spec)).toMatchObject([{ action: 'unchanged' }]);
    expect(await db.apply({ ...spec, spec_version: SPEC_VERSIONS.listener })).toMatchObject([{ action: 'unchanged' }]);
  });

  it('a newer spec_version is refused, naming the component and what to do; nothing is applied', async () => {
    const newer = { type: 'listener', name: 'docs_future', table: 'docs', keys: ['body'], spec_version: SPEC_VERSIONS.listener + 1 };
    await expect(db.apply(newer)).rejects.toThrow(
      new RegExp(`listener 'docs_future': spec_version ${SPEC_VERSIONS.listener + 1} is newer than this database's superduper reads \\(up to ${SPEC_VERSIONS.listener}\\)`),
    );
    await expect(db.apply(newer)).rejects.toMatchObject({ hint: expect.stringMatching(/Upgrade superduper/) });
    for (const bad of [0, 1.5, '1', null, -2]) {
      await expect(db.apply({ ...newer, spec_version: bad })).rejects.toThrow(/"spec_version" must be a whole number from 1/);
    }
    expect(await stored('listeners', 'docs_future')).toEqual([]);
  });

  it('an older spec_version goes through the upgrade steps of its type', async () => {
    // Pretend listeners are at version 2, with a step that renames a field of version 1.
    await database.sql.query(`
      UPDATE superduper._component_types SET spec_version = spec_version + 1 WHERE type = 'listener';
      CREATE FUNCTION superduper._spec_listener_${SPEC_VERSIONS.listener}_to_${SPEC_VERSIONS.listener + 1}(p_spec jsonb) RETURNS jsonb LANGUAGE sql AS $$
        SELECT (p_spec - 'columns') || jsonb_build_object('keys', p_spec -> 'columns')
      $$;`);
    try {
      const old = { type: 'listener', name: 'docs_old', table: 'docs', columns: ['body'], spec_version: SPEC_VERSIONS.listener };
      expect(await db.apply(old)).toMatchObject([{ type: 'listener', name: 'docs_old', action: 'created' }]);
      const { rows } = await database.sql.query(`SELECT keys, spec_version FROM superduper.listeners WHERE name = 'docs_old'`);
      expect(rows).toEqual([{ keys: ['body'], spec_version: SPEC_VERSIONS.listener + 1 }]);
      // Without the step, an old spec is refused with the function it lacks.
      await database.sql.query(`DROP FUNCTION superduper._spec_listener_${SPEC_VERSIONS.listener}_to_${SPEC_VERSIONS.listener + 1}(jsonb)`);
      await expect(db.apply({ ...old, name: 'docs_old2' })).rejects.toThrow(/_spec_listener_1_to_2/);
    } finally {
      await database.sql.query(`UPDATE superduper._component_types SET spec_version = ${SPEC_VERSIONS.listener} WHERE type = 'listener';
        DROP FUNCTION IF EXISTS superduper._spec_listener_${SPEC_VERSIONS.listener}_to_${SPEC_VERSIONS.listener + 1}(jsonb)`);
    }
  });
});
