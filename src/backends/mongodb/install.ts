import { MongoServerError } from 'mongodb';
import { codeVersion } from '../../generated/sql.js';
import { LISTENERS } from '../../generated/constants.js';
import type { InstallResult } from '../types.js';
import { clusterTime, collection, type MongoContext } from './context.js';
import { COLLECTIONS } from './names.js';
import { statusPipeline } from './status-view.js';

/**
 * The shape of superduper's collections in a MongoDB database. Raised when a
 * release changes them, with the step that upgrades older ones here.
 */
export const MONGO_LAYOUT = 1;

/** Indexes by collection: what claims, status and the sidecars' look-ups read. */
const INDEXES: Record<string, Array<{ key: Record<string, 1 | -1>; name: string; unique?: boolean }>> = {
  [COLLECTIONS.listeners]: [{ key: { name: 1, version: 1 }, name: 'name_version', unique: true }],
  [COLLECTIONS.queue]: [
    { key: { listener_id: 1, next_at: 1 }, name: 'claimable' },
    { key: { owner: 1 }, name: 'owner' },
  ],
  [COLLECTIONS.backfill]: [{ key: { owner: 1 }, name: 'owner' }],
  [COLLECTIONS.failures]: [{ key: { listener_id: 1, failed_at: 1 }, name: 'listener' }],
  [COLLECTIONS.requests]: [{ key: { state: 1, created_at: 1 }, name: 'pending' }],
  [COLLECTIONS.components]: [{ key: { status: 1 }, name: 'status' }],
};

/**
 * Creates (or completes) superduper's collections, indexes and views and the
 * default embedder. Every step is idempotent, so installers running at once
 * from several processes end in the same state.
 */
export async function installLayout(context: MongoContext): Promise<InstallResult> {
  const meta = collection(context, COLLECTIONS.meta);
  const before = await meta.findOne({ _id: 'layer' as never });
  const existing = new Set((await context.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  for (const name of Object.values(COLLECTIONS)) {
    if (name === COLLECTIONS.status || existing.has(name)) continue;
    await context.db.createCollection(name).catch(ignoreCode(48)); // NamespaceExists: another installer won
  }
  for (const [name, indexes] of Object.entries(INDEXES)) {
    await collection(context, name).createIndexes(indexes.map((index) => ({ key: index.key, name: index.name, unique: index.unique ?? false })));
  }
  // The status view is made again on every install, so that an upgrade brings its new shape.
  await context.db.dropCollection(COLLECTIONS.status).catch(ignoreCode(26)); // NamespaceNotFound
  await context.db
    .createCollection(COLLECTIONS.status, { viewOn: COLLECTIONS.listeners, pipeline: statusPipeline() })
    .catch(ignoreCode(48));
  await collection(context, COLLECTIONS.models).updateOne(
    { _id: LISTENERS.default_model as never },
    { $setOnInsert: defaultEmbedder() },
    { upsert: true },
  );
  // Where the capture's change stream starts the first time it runs: nothing
  // written before the install needs it (a listener's backfill reads those).
  const startAt = await clusterTime(context);
  await meta.updateOne({ _id: 'capture' as never }, { $setOnInsert: { start_at: startAt } }, { upsert: true });
  await meta.updateOne(
    { _id: 'layer' as never },
    { $set: { code_version: codeVersion, layout: MONGO_LAYOUT, updated_at: new Date() }, $setOnInsert: { installed_at: new Date() } },
    { upsert: true },
  );
  return {
    applied: before && before.layout === MONGO_LAYOUT ? [] : [MONGO_LAYOUT],
    codeVersion,
    via: 'installer',
    extensions: { vector: 'none', dblink: null },
    warnings: [],
  };
}

/** The default text embedder, as every PostgreSQL database has it (sql/functions/090_defaults.sql). */
function defaultEmbedder() {
  const spec = {
    type: 'model',
    name: LISTENERS.default_model,
    runtime: 'text-embedder',
    output: { type: 'vector', dim: 512 },
    config: { model: 'universal-sentence-encoder-lite' },
    artifact: null,
  };
  return { ...spec, spec, spec_hash: 'default', version: 1, created_at: new Date(), updated_at: new Date() };
}

export function ignoreCode(...codes: number[]) {
  return (error: unknown) => {
    if (error instanceof MongoServerError && typeof error.code === 'number' && codes.includes(error.code)) return undefined;
    throw error;
  };
}
