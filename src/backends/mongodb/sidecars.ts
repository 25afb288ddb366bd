import { SuperduperError } from '../../errors.js';
import { RUNTIMES, SQLSTATES } from '../../generated/constants.js';
import { latestMigration, type LayerVersion } from '../../layer-version.js';
import type { ListenerInfo } from '../../sidecar/listener-info.js';
import type { SidecarLiveness } from '../backend.js';
import type { SidecarRow } from '../types.js';
import { collection, type MongoContext } from './context.js';
import type { ListenerDoc, ModelDoc, QueueDoc, SidecarDoc } from './documents.js';
import { ignoreCode, MONGO_LAYOUT } from './install.js';
import { COLLECTIONS } from './names.js';
import { pointOutputsView } from './outputs-view.js';
import { releaseClaims } from './queue.js';

/** The code of the error for a database without superduper's collections (see missesOwnObject). */
export const NOT_INSTALLED = 'SUPERDUPER_NOT_INSTALLED';

/**
 * The layer's version as the sidecar compares it with its code. MongoDB's
 * layout has versions of its own (MONGO_LAYOUT), not SQL migrations: the same
 * layout reads as this code's last migration, an older one as none, a newer one
 * as past it.
 */
export async function layerVersion(context: MongoContext): Promise<LayerVersion> {
  const layer = await collection<{ _id: string; code_version: string; layout: number }>(context, COLLECTIONS.meta).findOne({ _id: 'layer' });
  if (!layer) {
    throw new SuperduperError(`superduper is not installed in MongoDB database "${context.db.databaseName}" (no superduper.meta)`, {
      code: NOT_INSTALLED,
      hint: 'Run "npx superduper install <uri>".',
    });
  }
  const migration = layer.layout === MONGO_LAYOUT ? latestMigration : layer.layout < MONGO_LAYOUT ? 0 : latestMigration + 1;
  return { code_version: layer.code_version, migration };
}

export function mongoSidecars(context: MongoContext): SidecarLiveness {
  const sidecars = collection<SidecarDoc>(context, COLLECTIONS.sidecars);
  const listeners = collection<ListenerDoc>(context, COLLECTIONS.listeners);
  return {
    async register(sidecar) {
      const layer = await layerVersion(context);
      const now = new Date();
      await sidecars.replaceOne(
        { _id: sidecar.id },
        {
          host: sidecar.host,
          pid: sidecar.pid,
          functions: sidecar.functions,
          state: 'starting',
          started_at: now,
          seen_at: now,
          outages: 0,
          last_outage_seconds: null,
          last_outage_reason: null,
        },
        { upsert: true },
      );
      return layer;
    },

    async heartbeat(sidecarId, beat) {
      const now = new Date();
      const update = await sidecars.updateOne(
        { _id: sidecarId },
        {
          $set: {
            seen_at: now,
            state: beat.state,
            ...(beat.outage ? { last_outage_seconds: beat.outage.seconds, last_outage_reason: beat.outage.reason } : {}),
          },
          ...(beat.outage ? { $inc: { outages: 1 } } : {}),
        },
        { maxTimeMS: beat.timeoutMs },
      );
      if (update.matchedCount === 0) {
        throw new SuperduperError(`sidecar ${sidecarId} is not registered (presumed dead by another sidecar)`, { code: SQLSTATES.not_registered });
      }
      const dead = await sidecars.find({ seen_at: { $lt: new Date(now.getTime() - beat.deadAfterMs) } }).project<{ _id: string }>({ _id: 1 }).toArray();
      let released = 0;
      if (dead.length > 0) {
        const ids = dead.map((d) => d._id);
        await sidecars.deleteMany({ _id: { $in: ids }, seen_at: { $lt: new Date(now.getTime() - beat.deadAfterMs) } });
        await releaseClaims(context, ids);
        released = ids.length;
      }
      return { layer: await layerVersion(context), released };
    },

    async stop(sidecarId) {
      await sidecars.deleteOne({ _id: sidecarId });
      await releaseClaims(context, [sidecarId]);
    },

    async listeners(functions) {
      const docs = await listeners.find({ state: { $in: ['current', 'building'] } }).sort({ _id: 1 }).toArray();
      const models = new Map((await collection<ModelDoc>(context, COLLECTIONS.models).find({ _id: { $in: [...new Set(docs.map((d) => d.model))] } }).toArray()).map((m) => [m._id, m]));
      const queue = collection<QueueDoc>(context, COLLECTIONS.queue);
      const infos: ListenerInfo[] = [];
      for (const doc of docs) {
        const model = models.get(doc.model);
        if (!model) continue;
        // A function model runs only in the process that registered it.
        if (model.runtime === RUNTIMES.process_local && !functions.includes(model.name)) continue;
        const queued = await queue.findOne({ listener_id: doc._id, next_at: { $lte: new Date() } }, { projection: { _id: 1 } });
        infos.push({
          id: doc._id,
          name: doc.name,
          version: doc.version,
          state: doc.state as 'current' | 'building',
          model: doc.model,
          runtime: model.runtime,
          model_hash: model.spec_hash,
          model_config: model.config,
          model_artifact: model.artifact,
          pk: ['_id'],
          keys: doc.keys,
          key_types: doc.keys.map(() => 'any'),
          output_type: model.output.type,
          output: model.output,
          settings: {
            batch_size: doc.settings.batch_size,
            chunk_size: doc.settings.chunk_size,
            max_attempts: doc.settings.max_attempts,
            lease_seconds: doc.settings.lease_seconds,
          },
          has_work: !doc.backfill.done || queued !== null,
        });
      }
      return infos;
    },

    async refreshSearchStatistics() {
      // Nothing to read: hybrid() and its full-text half are PostgreSQL's.
    },

    async runSchedules() {
      // Schedules are PostgreSQL's for now (a component type MongoDB refuses).
      return 0;
    },

    async runTraining() {
      // Trainers are PostgreSQL's for now (a component type MongoDB refuses).
      return undefined;
    },

    async buildVectorIndexes() {
      // Nothing to build: a vector index here is a registry document that
      // like() reads as it searches (registry.ts), changed in place.
      return 0;
    },

    async promoteReady() {
      let promoted = 0;
      for (const building of await listeners.find({ state: 'building', 'backfill.done': true }).toArray()) {
        // The view points at the new version first, in one step: readers see
        // the old outputs until then, the new ones after. Then the old
        // versions go, their outputs with them.
        await pointOutputsView(context, building.outputs_view, building.outputs);
        await listeners.updateOne({ _id: building._id }, { $set: { state: 'current', updated_at: new Date() } });
        for (const old of await listeners.find({ name: building.name, _id: { $ne: building._id }, state: { $ne: 'building' } }).toArray()) {
          await listeners.deleteOne({ _id: old._id });
          await collection(context, COLLECTIONS.queue).deleteMany({ listener_id: old._id });
          await collection(context, COLLECTIONS.failures).deleteMany({ listener_id: old._id });
          await collection(context, COLLECTIONS.backfill).deleteMany({ listener_id: old._id });
          await context.db.dropCollection(old.outputs).catch(ignoreCode(26));
        }
        promoted++;
      }
      return promoted;
    },

    async maintain() {
      // Nothing to vacuum: MongoDB reclaims deleted queue entries' space itself.
    },

    async list() {
      const now = Date.now();
      const docs = await sidecars.find({}).sort({ started_at: 1 }).toArray();
      return docs.map(
        (doc): SidecarRow => ({
          id: doc._id,
          state: doc.state,
          seen: (now - doc.seen_at.getTime()) / 1000,
          outages: doc.outages,
          last: doc.last_outage_seconds,
          reason: doc.last_outage_reason,
        }),
      );
    },
  };
}

