import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { LISTENERS, RUNTIMES, SQLSTATES } from '../../src/generated/constants.js';
import { ModelCache } from '../../src/models/registry.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

// What SQL and TypeScript share comes from sql/constants.json, written into both
// by the build: these check that the database in front of us was built from it,
// and that the TypeScript lists it stands for agree with it.
let database: TestDatabase;
let db: Superduper;

beforeAll(async () => {
  database = await createTestDatabase('constants');
  db = await connectTest(database);
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

describe('one source for what SQL and TypeScript share', () => {
  it('the runtimes the database accepts are the runtimes a sidecar has', async () => {
    const { rows } = await database.sql.query<{ names: string[] }>('SELECT superduper._runtimes() AS names');
    const sidecar = new ModelCache({ fetchArtifact: () => Promise.reject(new Error('unused')) });
    expect([...rows[0]!.names].sort()).toEqual([...RUNTIMES.names].sort());
    expect(sidecar.runtimeNames().sort()).toEqual([...RUNTIMES.names].sort());
    await sidecar.close();
  });

  it("a listener's stored settings are the shared defaults", async () => {
    await database.sql.query('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await db.apply({ type: 'listener', name: 'docs_plain', table: 'docs', keys: ['body'] });
    const { rows } = await database.sql.query<{ model: string; settings: Record<string, number> }>(
      `SELECT model, settings FROM superduper.listeners WHERE name = 'docs_plain'`,
    );
    expect(rows[0]).toEqual({ model: LISTENERS.default_model, settings: LISTENERS.settings });
  });

  it('the SQLSTATE a wait that times out raises is the shared one', async () => {
    await database.sql.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
    await db.apply({ type: 'listener', name: 'notes_plain', table: 'notes', keys: ['body'] });
    await database.sql.query(`INSERT INTO notes VALUES (1, 'no sidecar computes this')`);
    await expect(db.waitFor('notes_plain', { timeoutMs: 300 })).rejects.toMatchObject({ code: SQLSTATES.wait_timeout });
  });
});
