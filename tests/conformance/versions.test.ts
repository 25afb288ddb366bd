import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;

/** A text model whose calls can be held back, to look at the database mid-rebuild. */
function gatedModel(name: string, compute: (text: string) => string) {
  let open = true;
  let release: () => void = () => {};
  let gate = Promise.resolve();
  const model = functionModel({
    name,
    output: { type: 'text' },
    version: name,
    predict: async (inputs: string[]) => {
      if (!open) await gate;
      return inputs.map(compute);
    },
  });
  return Object.assign(model, {
    close() {
      open = false;
      gate = new Promise<void>((resolve) => (release = resolve));
    },
    open() {
      open = true;
      release();
    },
  });
}

const upper = gatedModel('upper', (t) => t.toUpperCase());
const reverse = gatedModel('reverse', (t) => [...t].reverse().join(''));

// A database per test, each with version 1 of docs_x computed: the tests build
// versions on it and count every output.
beforeEach(async () => {
  database = await createTestDatabase('versions');
  db = await connectTest(database);
  await database.sql.query(`CREATE TABLE docs (id int PRIMARY KEY, title text, body text, published boolean DEFAULT true)`);
  await database.sql.query(`INSERT INTO docs SELECT g, 'title ' || g, 'body ' || g, g % 2 = 0 FROM generate_series(1, 300) g`);
  await db.apply(upper, reverse, listener({ name: 'docs_x', model: 'upper', table: 'docs', keys: ['title'], settings: { chunk_size: 50 } }));
  await db.start({ reconcileMs: 100 });
  await db.waitUntilIdle();
});

afterEach(async () => {
  // A test that failed with a gate closed would leave the next one waiting.
  upper.open();
  reverse.open();
  await db?.close();
  await database?.drop();
});

const outputs = async () =>
  (await database.sql.query<{ id: number; output: string }>(`SELECT id, output FROM superduper.out_docs_x ORDER BY id`)).rows;

/** What the first test applies, without holding anything back: docs_x at version 2 (model reverse, keyed by body). */
async function rebuildOnce(): Promise<void> {
  await db.apply(listener({ name: 'docs_x', model: 'reverse', table: 'docs', keys: ['body'], settings: { chunk_size: 50 } }));
  await db.waitUntilIdle();
}

/** And what the second applies: docs_x at version 3 (model upper, keyed by body). */
async function rebuildTwice(): Promise<void> {
  await rebuildOnce();
  await db.apply(listener({ name: 'docs_x', model: 'upper', table: 'docs', keys: ['body'], settings: { chunk_size: 50 } }));
  await db.waitUntilIdle();
}

describe('listener versions', () => {
  it('changing the keys builds a new version and swaps it in when complete, never serving a mix', async () => {
    reverse.close();
    upper.close();
    const [result] = await db.apply(listener({ name: 'docs_x', model: 'reverse', table: 'docs', keys: ['body'], settings: { chunk_size: 50 } }));
    expect(result).toMatchObject({ action: 'rebuilding', version: 2, backfill: 300 });

    // While version 2 is computed, the stable table still holds version 1's
    // outputs only, complete.
    const during = await outputs();
    expect(during).toHaveLength(300);
    expect(during.every((row) => row.output === `TITLE ${row.id}`)).toBe(true);
    const states = await database.sql.query(`SELECT version, state FROM superduper.listeners WHERE name = 'docs_x' ORDER BY version`);
    expect(states.rows).toEqual([
      { version: 1, state: 'current' },
      { version: 2, state: 'building' },
    ]);

    reverse.open();
    upper.open();
    await db.waitUntilIdle();
    const after = await outputs();
    expect(after).toHaveLength(300);
    expect(after.every((row) => row.output === [...`body ${row.id}`].reverse().join(''))).toBe(true);
    const listeners = await database.sql.query(`SELECT version, state, keys FROM superduper.listeners WHERE name = 'docs_x'`);
    expect(listeners.rows).toEqual([{ version: 2, state: 'current', keys: ['body'] }]);
    const leftovers = await database.sql.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'out_docs_x__v%'`);
    expect(leftovers.rows[0].n).toBe(0);
  });

  it('changes made during a rebuild are in the new version', async () => {
    await rebuildOnce();
    reverse.close();
    await db.apply(listener({ name: 'docs_x', model: 'upper', table: 'docs', keys: ['body'], settings: { chunk_size: 50 } }));
    await database.sql.query(`UPDATE docs SET body = 'edited mid rebuild' WHERE id = 7`);
    await database.sql.query(`INSERT INTO docs VALUES (301, 't', 'new mid rebuild')`);
    await database.sql.query(`DELETE FROM docs WHERE id = 8`);
    reverse.open();
    await db.waitUntilIdle();
    const rows = new Map((await outputs()).map((r) => [r.id, r.output]));
    expect(rows.size).toBe(300);
    expect(rows.get(7)).toBe('EDITED MID REBUILD');
    expect(rows.get(301)).toBe('NEW MID REBUILD');
    expect(rows.has(8)).toBe(false);
  });

  it('changing the filter updates in place: rows leaving lose their output, rows entering are computed', async () => {
    await rebuildTwice();
    const [result] = await db.apply(
      listener({ name: 'docs_x', model: 'upper', table: 'docs', keys: ['body'], filter: 'published', settings: { chunk_size: 50 } }),
    );
    expect(result).toMatchObject({ action: 'updated', version: 3 });
    await db.waitUntilIdle();
    const published = await database.sql.query(`SELECT id FROM docs WHERE published ORDER BY id`);
    expect((await outputs()).map((r) => r.id)).toEqual(published.rows.map((r) => r.id));

    await database.sql.query(`UPDATE docs SET published = true WHERE id = 1`);
    await database.sql.query(`UPDATE docs SET published = false WHERE id = 2`);
    expect((await outputs()).some((r) => r.id === 2)).toBe(false); // at once, in the UPDATE
    await eventually(async () => (await outputs()).some((r) => r.id === 1 && r.output === 'BODY 1'));
  });

  it('re-applying a model with other code rebuilds its listeners', async () => {
    const shouting = functionModel({ name: 'upper', output: { type: 'text' }, version: 'v2', predict: (ins: string[]) => ins.map((t) => `${t.toUpperCase()}!`) });
    const [modelResult] = await db.apply(shouting);
    expect(modelResult).toMatchObject({ action: 'updated', version: 2, rebuilding: ['docs_x'] });
    await db.waitUntilIdle();
    const rows = await outputs();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.output.endsWith('!'))).toBe(true);
  });
});

describe('coalescing', () => {
  it('repeated updates of a row before the sidecar reaches it are computed once, with the latest value', async () => {
    const seen: string[] = [];
    await database.sql.query(`CREATE TABLE hot (id int PRIMARY KEY, body text); INSERT INTO hot VALUES (1, 'v0')`);
    await db.apply(
      functionModel({ name: 'record', output: { type: 'text' }, predict: (ins: string[]) => ins.map((t) => (seen.push(t), t)) }),
      listener({ name: 'hot_l', model: 'record', table: 'hot', keys: ['body'] }),
    );
    await db.waitUntilIdle();
    seen.length = 0;
    // All updates in one transaction would coalesce anyway; these are separate
    // commits, made faster than a sidecar is allowed to look (none runs here).
    await db.close();
    db = await connectTest(database);
    for (let i = 1; i <= 20; i++) await database.sql.query(`UPDATE hot SET body = $1 WHERE id = 1`, [`v${i}`]);
    const logged = await database.sql.query(`SELECT count(*)::int AS n FROM superduper._changes`);
    expect(logged.rows[0].n).toBe(20);
    await db.apply(functionModel({ name: 'record', output: { type: 'text' }, predict: (ins: string[]) => ins.map((t) => (seen.push(t), t)) }));
    await db.start({ reconcileMs: 100 });
    await db.waitUntilIdle();
    expect(seen).toEqual(['v20']);
    const out = await database.sql.query(`SELECT output FROM superduper.out_hot_l`);
    expect(out.rows).toEqual([{ output: 'v20' }]);
  });
});
