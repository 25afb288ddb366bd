/**
 * Component identity (sql/functions/044_identity.sql): each component's
 * identity is the hash of its spec without the fields its type declares
 * non-breaking; its hash covers the whole spec. The same spec changes nothing,
 * the same identity is updated in place, another identity is a new version
 * built beside the current one. An application's identity is its components'.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { application } from '../../src/components/application.js';
import { listener } from '../../src/components/listener.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import { functionModel } from '../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Superduper;
const q = <Row = Record<string, unknown>>(text: string, params: unknown[] = []) =>
  database.sql.query(text, params).then((r) => r.rows as Row[]);

const measure = (version = 'v1') =>
  functionModel({ name: 'measure', version, output: { type: 'vector', dim: 2 }, predict: (ins: string[]) => ins.map((t) => [t.length, 1]) });
const LISTENER = `Doc "Measure"; x`;
const APP = `Docs "App"; 1`;

interface VersionRow {
  type: string;
  name: string;
  version: number;
  state: string;
  identity: string;
  hash: string;
}
const versionsOf = (type: string, name: string) =>
  q<VersionRow>(`SELECT type, name, version, state, identity, hash FROM superduper.component_versions WHERE type = $1 AND name = $2 ORDER BY version`, [
    type,
    name,
  ]);

beforeEach(async () => {
  database = await createTestDatabase('component_identity');
  db = await connectTest(database);
  await q(`CREATE TABLE "My Docs" (id int PRIMARY KEY, body text); INSERT INTO "My Docs" VALUES (1, 'hello'), (2, 'moon')`);
  await db.start({ reconcileMs: 100 });
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

describe('component identity', () => {
  it('lists every component with an identity and a hash, the same after the same spec again', async () => {
    await db.apply(measure(), listener({ name: LISTENER, model: 'measure', table: 'My Docs', keys: ['body'] }));
    const before = await q<VersionRow>(`SELECT type, name, version, state, identity, hash FROM superduper.component_versions ORDER BY type, name`);
    expect(before.map((r) => [r.type, r.name, r.version, r.state])).toEqual([
      ['listener', LISTENER, 1, 'current'],
      ['model', 'default-embedder', 1, 'current'],
      ['model', 'measure', 1, 'current'],
    ]);
    for (const row of before) {
      expect(row.identity).toMatch(/^[0-9a-f]{64}$/);
      expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(await db.apply(measure(), listener({ name: LISTENER, model: 'measure', table: 'My Docs', keys: ['body'] }))).toEqual([
      expect.objectContaining({ action: 'unchanged' }),
      expect.objectContaining({ action: 'unchanged' }),
    ]);
    expect(await q(`SELECT type, name, version, state, identity, hash FROM superduper.component_versions ORDER BY type, name`)).toEqual(before);
  });

  it('updates a listener in place when only its settings change, and builds a new version when its model does', async () => {
    await db.apply(measure(), listener({ name: LISTENER, model: 'measure', table: 'My Docs', keys: ['body'] }));
    const [v1] = await versionsOf('listener', LISTENER);
    const [settings] = await db.apply(listener({ name: LISTENER, model: 'measure', table: 'My Docs', keys: ['body'], settings: { batch_size: 7 } }));
    expect(settings).toMatchObject({ action: 'updated', version: 1 });
    const [updated] = await versionsOf('listener', LISTENER);
    expect(updated).toMatchObject({ version: 1, identity: v1!.identity });
    expect(updated!.hash).not.toBe(v1!.hash);

    const shout = functionModel({ name: 'shout', output: { type: 'text' }, predict: (ins: string[]) => ins.map((t) => t.toUpperCase()) });
    await db.apply(shout);
    const [rebuilt] = await db.apply(listener({ name: LISTENER, model: 'shout', table: 'My Docs', keys: ['body'] }));
    expect(rebuilt).toMatchObject({ action: 'rebuilding', version: 2 });
    // Beside version 1 until its two rows are computed (which the sidecar may have done already).
    const versions = await versionsOf('listener', LISTENER);
    expect(versions.map((r) => [r.version, r.state])).toEqual(versions.length === 2 ? [[1, 'current'], [2, 'building']] : [[2, 'current']]);
    expect(versions.at(-1)!.identity).not.toBe(v1!.identity);
  });

  it('keeps a model version and its listeners when only how it is called changes, and rebuilds them when what it computes does', async () => {
    const model = measure();
    await db.apply(model, listener({ name: LISTENER, model: 'measure', table: 'My Docs', keys: ['body'] }));
    await db.waitFor(LISTENER);
    const [v1] = await versionsOf('model', 'measure');
    const spec = model.spec as { config: Record<string, unknown> };
    const [called] = await db.apply({ ...spec, config: { ...spec.config, batch_size: 8, timeout_ms: 5000 } });
    expect(called).toMatchObject({ type: 'model', action: 'updated', version: 1 });
    expect(called).not.toHaveProperty('rebuilding');
    const [after] = await versionsOf('model', 'measure');
    expect(after).toMatchObject({ version: 1, identity: v1!.identity });
    expect(after!.hash).not.toBe(v1!.hash);
    expect((await versionsOf('listener', LISTENER)).map((r) => r.state)).toEqual(['current']);
    // The sidecar loads it again by its new hash and goes on computing.
    await q(`INSERT INTO "My Docs" VALUES (3, 'planet')`);
    await db.waitFor(LISTENER);
    const outputs = await db.outputsTable(LISTENER);
    expect(await q(`SELECT output::text FROM ${outputs} WHERE id = 3`)).toEqual([{ output: '[6,1]' }]);

    const [computed] = await db.apply(measure('v2'));
    expect(computed).toMatchObject({ action: 'updated', version: 2, rebuilding: [LISTENER] });
    expect((await versionsOf('model', 'measure'))[0]!.identity).not.toBe(v1!.identity);
  });

  it('gives an application a new version when a component changes in a breaking way, and only then', async () => {
    const app = (options: { description?: string; batch?: number; measureName?: string } = {}) =>
      application({
        name: APP,
        description: options.description ?? 'search',
        components: [
          measure(),
          listener({ name: LISTENER, model: 'measure', table: 'My Docs', keys: ['body'], settings: options.batch ? { batch_size: options.batch } : {} }),
          vectorIndex({ name: 'doc_index', listener: LISTENER }),
        ],
      });
    const [created] = await db.apply(app());
    expect(created).toMatchObject({ action: 'created', version: 1 });
    const [v1] = await versionsOf('application', APP);

    const [described] = await db.apply(app({ description: 'search over the docs' }));
    expect(described).toMatchObject({ action: 'updated', version: 1 });
    const [settings] = await db.apply(app({ description: 'search over the docs', batch: 9 }));
    expect(settings).toMatchObject({ action: 'updated', version: 1 });
    expect((await versionsOf('application', APP))[0]).toMatchObject({ version: 1, identity: v1!.identity });

    // Another measure for its index: a breaking change of a child, so a new application version.
    const [rebuilt] = await db.apply({
      ...(app({ description: 'search over the docs', batch: 9 }).spec as Record<string, unknown>),
      components: [
        measure().spec,
        listener({ name: LISTENER, model: 'measure', table: 'My Docs', keys: ['body'], settings: { batch_size: 9 } }).spec,
        vectorIndex({ name: 'doc_index', listener: LISTENER, measure: 'l2' }).spec,
      ],
    });
    expect(rebuilt).toMatchObject({ action: 'updated', version: 2 });
    expect(rebuilt!.components!.map((c) => [c.name, c.action])).toEqual([
      ['measure', 'unchanged'],
      [LISTENER, 'unchanged'],
      ['doc_index', 'rebuilding'],
    ]);
    const [v2] = await versionsOf('application', APP);
    expect(v2).toMatchObject({ version: 2 });
    expect(v2!.identity).not.toBe(v1!.identity);
    expect(await q(`SELECT version FROM superduper.applications WHERE name = $1`, [APP])).toEqual([{ version: 2 }]);
  });
});
