import { createHash } from 'node:crypto';
import { SuperduperError } from '../../errors.js';
import { RUNTIMES, SPEC_VERSIONS } from '../../generated/constants.js';
import type { ModelRecord } from '../../models/types.js';
import { withStoredSpecs, type ModelUpload, type Registry } from '../backend.js';
import { mongoApplications, type DryRun } from './applications.js';
import type { ApplyResult, FailureRow, ListenerStatus, PlanResult } from '../types.js';
import { clusterTime, collection, seqOf, type MongoContext } from './context.js';
import type { BackfillRangeDoc, FailureDoc, ListenerDoc, ModelDoc, QueueDoc, VectorIndexDoc } from './documents.js';
import { modelFiles } from './files.js';
import { ignoreCode } from './install.js';
import { keyText } from './keys.js';
import { COLLECTIONS, outputsCollection, outputsView } from './names.js';
import { pointOutputsView } from './outputs-view.js';
import { modelIdentity, parseSpec, specHash, type ComponentSpec, type ListenerSpec, type ModelSpec, type VectorIndexSpec } from './specs.js';
import { createSearchIndex, storedStages } from './search.js';
import { QUERY_PLACEHOLDER } from './search-pipeline.js';

/** Listener versions that are kept current (or wait to be); 'frozen' ones keep serving, 'stopped' ones say why. */
const LIVE_STATES = ['current', 'building'] as const;

/**
 * The registry in superduper.models, .listeners and .vector_indexes. MongoDB
 * gives no transaction here (the emulation the tests run on has none, and a
 * standalone server has none), so apply checks every spec of the call, and
 * every name they refer to, before it writes anything: a spec that is refused
 * leaves nothing behind.
 */
export function mongoRegistry(context: MongoContext): Registry & { applyOne(raw: unknown): Promise<ApplyResult[]> } {
  const models = collection<ModelDoc>(context, COLLECTIONS.models);
  const listeners = collection<ListenerDoc>(context, COLLECTIONS.listeners);
  const indexes = collection<VectorIndexDoc>(context, COLLECTIONS.vectorIndexes);
  const files = modelFiles(context);

  async function check(specs: ComponentSpec[], dry?: DryRun): Promise<void> {
    const modelsHere = new Map(specs.filter((s): s is ModelSpec => s.type === 'model').map((s) => [s.name, s]));
    const listenersHere = new Map(specs.filter((s): s is ListenerSpec => s.type === 'listener').map((s) => [s.name, s]));
    const outputOf = async (model: string) => modelsHere.get(model)?.output ?? (await models.findOne({ _id: model }))?.output;
    for (const spec of specs) {
      if (spec.type === 'model' && spec.artifact && !dry?.planned.has(spec.artifact) && !(await files.has(spec.artifact))) {
        throw new SuperduperError(`superduper: model "${spec.name}": artifact ${spec.artifact} is not stored`, {
          hint: 'Apply the model from TypeScript (db.apply(onnxModel(...))), which stores its file first.',
        });
      }
      if (spec.type === 'listener') {
        if (!(await outputOf(spec.model))) {
          throw new SuperduperError(`superduper: listener "${spec.name}": unknown model "${spec.model}"`, { hint: 'Apply the model first, or in the same call.' });
        }
        const exists = await context.db.listCollections({ name: spec.collection }, { nameOnly: true }).hasNext();
        if (!exists) {
          throw new SuperduperError(`superduper: listener "${spec.name}": collection "${spec.collection}" does not exist in database "${context.db.databaseName}"`, {
            hint: `Create it first (db.createCollection("${spec.collection}") in mongosh), or check the name: collection names are case-sensitive.`,
          });
        }
      }
      if (spec.type === 'vector_index') {
        const listener = listenersHere.get(spec.listener) ?? (await listeners.findOne({ name: spec.listener, state: { $in: ['current', 'building', 'frozen'] } }))?.spec;
        if (!listener) {
          throw new SuperduperError(`superduper: vector index "${spec.name}": unknown listener '${spec.listener}'`, {
            hint: 'The listener whose outputs are the vectors to search; apply it first.',
          });
        }
        const vectors = await outputOf(listener.model);
        if (vectors?.type !== 'vector') {
          throw new SuperduperError(`superduper: vector index "${spec.name}": listener "${listener.name}" outputs ${vectors?.type ?? 'nothing'}, not vectors`);
        }
        let queryModel = spec.query_model ?? listener.model;
        if (spec.compatible_listener) {
          const compatible = listenersHere.get(spec.compatible_listener) ?? (await listeners.findOne({ name: spec.compatible_listener }))?.spec;
          if (!compatible) throw new SuperduperError(`superduper: vector index "${spec.name}": unknown compatible listener '${spec.compatible_listener}'`);
          queryModel = compatible.model;
        }
        const query = await outputOf(queryModel);
        if (!query) throw new SuperduperError(`superduper: vector index "${spec.name}": unknown query model '${queryModel}'`);
        if (query.type !== 'vector' || query.dim !== vectors.dim) {
          throw new SuperduperError(
            `superduper: vector index "${spec.name}": query model "${queryModel}" outputs ${query.type === 'vector' ? `vector(${query.dim})` : query.type}, but the vectors of listener "${listener.name}" are vector(${vectors.dim})`,
            { hint: 'Queries and indexed vectors must have the same dimension (and come from compatible models).' },
          );
        }
      }
    }
  }

  async function applyModel(spec: ModelSpec, dry: DryRun | undefined): Promise<ApplyResult> {
    const hash = specHash(spec);
    const old = await models.findOne({ _id: spec.name });
    const now = new Date();
    if (!old) {
      if (dry) return { type: 'model', name: spec.name, action: 'created', version: 1 };
      await models.insertOne({ _id: spec.name, ...spec, spec, spec_hash: hash, version: 1, created_at: now, updated_at: now }).catch(ignoreCode(11000));
      return { type: 'model', name: spec.name, action: 'created', version: 1 };
    }
    if (old.spec_hash === hash) return { type: 'model', name: spec.name, action: 'unchanged', version: old.version };
    if (modelIdentity(old.spec) === modelIdentity(spec)) {
      // Only how it is called changed: the same version, its outputs kept;
      // sidecars load it again by its new hash.
      if (dry) return { type: 'model', name: spec.name, action: 'updated', version: old.version };
      await models.updateOne({ _id: spec.name }, { $set: { ...spec, spec, spec_hash: hash, updated_at: now } });
      return { type: 'model', name: spec.name, action: 'updated', version: old.version };
    }
    // New model, new outputs: each listener on it is recomputed as a new
    // version; the current one keeps serving its outputs, frozen, meanwhile.
    const using = await listeners.find({ model: spec.name, state: 'current' }).toArray();
    if (dry) return { type: 'model', name: spec.name, action: 'updated', version: old.version + 1, rebuilding: using.map((l) => l.name).sort() };
    await models.updateOne({ _id: spec.name }, { $set: { ...spec, spec, spec_hash: hash, updated_at: now }, $inc: { version: 1 } });
    for (const listener of using) {
      await listeners.updateOne({ _id: listener._id }, { $set: { state: 'frozen', note: `model "${spec.name}" changed; version being rebuilt`, updated_at: now } });
      await createVersion(listener.spec, listener.version + 1, 'building');
    }
    return { type: 'model', name: spec.name, action: 'updated', version: old.version + 1, rebuilding: using.map((l) => l.name).sort() };
  }

  async function createVersion(spec: ListenerSpec, version: number, state: 'current' | 'building'): Promise<ListenerDoc> {
    // A version being built that this one replaces is dropped with its outputs.
    for (const stale of await listeners.find({ name: spec.name, state: 'building' }).toArray()) await dropVersion(stale, false);
    const id = await nextId();
    const now = new Date();
    const doc: ListenerDoc = {
      _id: id,
      name: spec.name,
      version,
      state,
      model: spec.model,
      collection: spec.collection,
      keys: spec.keys,
      filter: spec.filter,
      settings: spec.settings,
      spec,
      spec_hash: specHash(spec),
      outputs: outputsCollection(spec.name, version),
      outputs_view: outputsView(spec.name),
      backfill: { bracket: 0, after: null, done: false, total: 0, written: 0, chunks: 0, fresh: true, reconcile_before: null },
      note: null,
      created_at: now,
      updated_at: now,
    };
    await context.db.createCollection(doc.outputs).catch(ignoreCode(48));
    await listeners.insertOne(doc);
    // Changes after this moment are the change stream's; the backfill reads
    // every document as it is after it.
    const seqStart = seqOf(await clusterTime(context));
    const total = await context.db.collection(spec.collection).countDocuments(spec.filter ?? {});
    await listeners.updateOne({ _id: id }, { $set: { seq_start: seqStart, 'backfill.total': total } });
    if (state === 'current') await pointView(doc);
    return { ...doc, seq_start: seqStart, backfill: { ...doc.backfill, total } };
  }

  async function nextId(): Promise<number> {
    const counter = await collection<{ _id: string; listener: number }>(context, COLLECTIONS.meta).findOneAndUpdate(
      { _id: 'ids' },
      { $inc: { listener: 1 } },
      { upsert: true, returnDocument: 'after' },
    );
    return counter!.listener;
  }

  /** Points superduper.outputs.<name> at a version's collection, in one step (outputs-view.ts). */
  async function pointView(doc: ListenerDoc): Promise<void> {
    await pointOutputsView(context, doc.outputs_view, doc.outputs);
  }

  async function applyListener(spec: ListenerSpec, dry: DryRun | undefined): Promise<ApplyResult> {
    const versions = await listeners.find({ name: spec.name }).sort({ version: -1 }).toArray();
    const current = versions.find((v) => v.state === 'current' || v.state === 'stopped' || v.state === 'frozen');
    const building = versions.find((v) => v.state === 'building');
    const latest = building ?? current;
    const hash = specHash(spec);
    if (latest && latest.spec_hash === hash && latest.state !== 'stopped') {
      return { type: 'listener', name: spec.name, action: 'unchanged', version: latest.version };
    }
    const sameButSettings = latest && latest.state !== 'stopped' && specHash({ ...latest.spec, settings: spec.settings }) === hash;
    if (latest && sameButSettings) {
      if (dry) return { type: 'listener', name: spec.name, action: 'updated', version: latest.version, rows: 0 };
      await listeners.updateMany({ name: spec.name, state: { $in: [...LIVE_STATES] } }, { $set: { settings: spec.settings, spec, spec_hash: hash, updated_at: new Date() } });
      return { type: 'listener', name: spec.name, action: 'updated', version: latest.version };
    }
    const version = (versions[0]?.version ?? 0) + 1;
    if (dry) {
      return { type: 'listener', name: spec.name, action: current ? 'rebuilding' : 'created', version, ...(await dry.estimate(spec)) };
    }
    if (!current) {
      const doc = await createVersion(spec, version, 'current');
      return { type: 'listener', name: spec.name, action: 'created', version, backfill: doc.backfill.total };
    }
    const doc = await createVersion(spec, version, 'building');
    return { type: 'listener', name: spec.name, action: 'rebuilding', version, backfill: doc.backfill.total };
  }

  async function applyVectorIndex(spec: VectorIndexSpec, dry: DryRun | undefined): Promise<ApplyResult> {
    const hash = specHash(spec);
    const old = await indexes.findOne({ _id: spec.name });
    if (old?.spec_hash === hash) return { type: 'vector_index', name: spec.name, action: 'unchanged' };
    // (Read at query time: any change is made in place.)
    if (dry) return { type: 'vector_index', name: spec.name, action: old ? 'updated' : 'created' };
    const listener = (await listeners.findOne({ name: spec.listener, state: 'current' })) ?? (await listeners.findOne({ name: spec.listener }));
    const dim = (await models.findOne({ _id: listener!.model }))!.output;
    const search = await createSearchIndex(context, listener!.outputs, spec, dim.type === 'vector' ? dim.dim : 0);
    const doc: VectorIndexDoc = {
      _id: spec.name,
      name: spec.name,
      listener: spec.listener,
      query_model: spec.compatible_listener
        ? ((await listeners.findOne({ name: spec.compatible_listener }))?.model ?? null)
        : spec.query_model,
      measure: spec.measure,
      spec,
      spec_hash: hash,
      search: search.kind,
      score_stages: storedStages(spec.measure, dim.type === 'vector' ? dim.dim : 0),
      query_placeholder: QUERY_PLACEHOLDER,
      note: search.note,
      created_at: new Date(),
    };
    await indexes.replaceOne({ _id: spec.name }, doc, { upsert: true });
    return { type: 'vector_index', name: spec.name, action: old ? 'updated' : 'created' };
  }

  async function dropVersion(doc: ListenerDoc, keepOutputs: boolean): Promise<void> {
    await listeners.deleteOne({ _id: doc._id });
    await collection<QueueDoc>(context, COLLECTIONS.queue).deleteMany({ listener_id: doc._id });
    await collection<BackfillRangeDoc>(context, COLLECTIONS.backfill).deleteMany({ listener_id: doc._id });
    await collection<FailureDoc>(context, COLLECTIONS.failures).deleteMany({ listener_id: doc._id });
    if (!keepOutputs) await context.db.dropCollection(doc.outputs).catch(ignoreCode(26));
  }

  async function applyComponents(raw: ReadonlyArray<unknown>, dry?: DryRun): Promise<ApplyResult[]> {
    const specs = raw.map(parseSpec);
    await check(specs, dry);
    const results: ApplyResult[] = [];
    for (const spec of specs) {
      if (spec.type === 'model') results.push(await applyModel(spec, dry));
      else if (spec.type === 'listener') results.push(await applyListener(spec, dry));
      else results.push(await applyVectorIndex(spec, dry));
    }
    return results;
  }

  /** What uses a model: listeners (any version) and vector indexes embedding queries with it (less what a plan removes first). */
  async function modelUsers(name: string, dry?: DryRun): Promise<string[]> {
    const users = [
      ...(await listeners.find({ model: name }).toArray()).map((l) => ['listener', l.name]),
      ...(await indexes.find({ query_model: name }).toArray()).map((i) => ['vector_index', i.name]),
    ].filter(([type, user]) => !dry?.removed.has(`${type} ${user}`));
    return [...new Set(users.map(([, user]) => user!))].sort();
  }

  async function removeComponent(name: string, options: { keepOutputs: boolean; cascade: boolean }, dry?: DryRun): Promise<ApplyResult[]> {
    const gone = (type: string, component: string) => dry?.removed.has(`${type} ${component}`) ?? false;
    const index = await indexes.findOne({ _id: name });
    if (index && !gone('vector_index', name)) {
      if (dry) dry.removed.add(`vector_index ${name}`);
      else await indexes.deleteOne({ _id: name });
      return [{ type: 'vector_index', name, action: 'removed' }];
    }
    const versions = gone('listener', name) ? [] : await listeners.find({ name }).toArray();
    if (versions.length > 0) {
      const searchedBy = (await indexes.find({ listener: name }).toArray()).filter((i) => !gone('vector_index', i.name));
      if (searchedBy.length > 0 && !options.cascade) {
        throw new SuperduperError(`superduper.remove: listener "${name}" is searched by vector index(es) ${searchedBy.map((i) => i.name).sort().join(', ')}`, {
          hint: 'Remove those first, or remove with cascade (--cascade on the command line) to remove them too.',
        });
      }
      const results: ApplyResult[] = [];
      for (const searched of searchedBy) {
        if (dry) dry.removed.add(`vector_index ${searched.name}`);
        else await indexes.deleteOne({ _id: searched._id });
        results.push({ type: 'vector_index', name: searched.name, action: 'removed' });
      }
      if (dry) {
        dry.removed.add(`listener ${name}`);
        return [...results, { type: 'listener', name, action: 'removed' }];
      }
      for (const version of versions) await dropVersion(version, options.keepOutputs);
      if (!options.keepOutputs) await context.db.dropCollection(outputsView(name)).catch(ignoreCode(26));
      results.push({ type: 'listener', name, action: 'removed' });
      return results;
    }
    const model = gone('model', name) ? null : await models.findOne({ _id: name });
    if (model) {
      const users = await modelUsers(name, dry);
      if (users.length > 0) {
        throw new SuperduperError(`superduper.remove: model "${name}" is used by ${users.join(', ')}`, { hint: 'Remove those listeners and vector indexes first.' });
      }
      if (dry) dry.removed.add(`model ${name}`);
      else await models.deleteOne({ _id: name });
      return [{ type: 'model', name, action: 'removed' }];
    }
    throw new SuperduperError(`superduper.remove: no application, model, listener or vector index named '${name}'`, {
      hint: 'See db.superduper.applications, db.superduper.models, db.superduper.listeners and db.superduper.vector_indexes in mongosh.',
    });
  }

  /**
   * A listener's rows to compute (the documents its filter passes) and, for a
   * model billed per token, about how many tokens they send: four characters a
   * token, over the average length of its keys in the first 1,000 documents.
   */
  async function estimate(spec: ListenerSpec): Promise<{ rows: number; tokens_estimate?: number }> {
    const source = context.db.collection(spec.collection);
    const rows = await source.countDocuments(spec.filter ?? {});
    const runtime = (await models.findOne({ _id: spec.model }))?.runtime;
    if (!runtime || !(RUNTIMES.billed as readonly string[]).includes(runtime)) return { rows };
    const sample = await source.find(spec.filter ?? {}, { limit: 1000 }).toArray();
    const length = (value: unknown) => (value === undefined || value === null ? 0 : typeof value === 'string' ? value.length : JSON.stringify(value).length);
    const chars = sample.reduce((sum, doc) => sum + spec.keys.reduce((n, key) => n + length(doc[key]), 0), 0) / Math.max(1, sample.length);
    return { rows, tokens_estimate: Math.ceil((rows * chars) / 4) };
  }

  const applications = mongoApplications(context, {
    check: async (raw, dry) => check(raw.map(parseSpec), dry),
    applySpecs: applyComponents,
    removeComponent: (name, keepOutputs, dry) => removeComponent(name, { keepOutputs, cascade: false }, dry),
    exists: async (type, name, dry) =>
      dry?.removed.has(`${type} ${name}`) ? false
      : type === 'model' ? (await models.countDocuments({ _id: name })) > 0
      : type === 'listener' ? (await listeners.countDocuments({ name })) > 0
      : type === 'vector_index' ? (await indexes.countDocuments({ _id: name })) > 0
      : false,
    modelUsers,
  });

  /** Specs in order: an application's through applications.ts, runs of the others checked together then applied (or, dry, planned). */
  async function applySpecs(raw: ReadonlyArray<unknown>, dry?: DryRun): Promise<ApplyResult[]> {
    const results: ApplyResult[] = [];
    let run: unknown[] = [];
    const flush = async () => {
      if (run.length > 0) results.push(...(await applyComponents(run, dry)));
      run = [];
    };
    for (const spec of raw) {
      if (typeof spec === 'object' && spec !== null && (spec as { type?: unknown }).type === 'application') {
        await flush();
        results.push(await applications.apply(spec as Record<string, unknown>, dry));
      } else {
        run.push(spec);
      }
    }
    await flush();
    return results;
  }

  return {
    async apply(specs, uploads: ReadonlyArray<ModelUpload>) {
      const storedSpecs = new Map<Record<string, unknown>, Record<string, unknown>>();
      for (const upload of uploads) {
        const spec = { ...upload.spec };
        if (upload.artifact) spec.artifact = await files.put(upload.artifact);
        if (upload.files) {
          const stored: Record<string, string> = {};
          for (const [path, bytes] of Object.entries(upload.files)) stored[path] = await files.put(bytes);
          spec.config = { ...(spec.config as Record<string, unknown>), files: stored };
        }
        storedSpecs.set(upload.spec, spec);
      }
      return applySpecs(withStoredSpecs(specs, storedSpecs));
    },

    async application(name) {
      const doc = await applications.get(name);
      return doc ? { spec: doc.spec, template: doc.template, specVersions: { ...SPEC_VERSIONS } } : undefined;
    },

    async plan(specs, uploads) {
      // Model files are named by their SHA-256 (the apply stores them); nothing is written.
      const planned = new Map<Record<string, unknown>, Record<string, unknown>>();
      for (const upload of uploads) {
        const spec = { ...upload.spec };
        if (upload.artifact) spec.artifact = createHash('sha256').update(upload.artifact).digest('hex');
        if (upload.files) {
          spec.config = {
            ...(spec.config as Record<string, unknown>),
            files: Object.fromEntries(Object.entries(upload.files).map(([path, bytes]) => [path, createHash('sha256').update(bytes).digest('hex')])),
          };
        }
        planned.set(upload.spec, spec);
      }
      const dry: DryRun = { removed: new Set(), planned: new Set(uploads.filter((u) => u.artifact).map((u) => planned.get(u.spec)!.artifact as string)), estimate };
      return planResults(await applySpecs(withStoredSpecs(specs, planned), dry));
    },

    applyOne: (raw) => applySpecs([raw]),

    async remove(name, options) {
      if (await applications.has(name)) return applications.remove(name, options.keepOutputs);
      return removeComponent(name, options);
    },
    async status(options) {
      const queue = collection<QueueDoc>(context, COLLECTIONS.queue);
      const ranges = collection<BackfillRangeDoc>(context, COLLECTIONS.backfill);
      const failures = collection<FailureDoc>(context, COLLECTIONS.failures);
      const docs = await listeners.find({}).sort({ name: 1, version: 1 }).toArray();
      const now = Date.now();
      return Promise.all(
        docs.map(async (doc): Promise<ListenerStatus> => {
          const [queued, leased, oldest, flying, failed, withdrawn, done] = await Promise.all([
            queue.countDocuments({ listener_id: doc._id }),
            queue.countDocuments({ listener_id: doc._id, owner: { $exists: true } }),
            queue.find({ listener_id: doc._id }).sort({ enqueued_at: 1 }).limit(1).project<{ enqueued_at: Date }>({ enqueued_at: 1 }).next(),
            ranges.find({ listener_id: doc._id }).project<{ rows: number; computed?: number }>({ rows: 1, computed: 1 }).toArray(),
            failures.countDocuments({ listener_id: doc._id }),
            failures.countDocuments({ listener_id: doc._id, withdrawn: true }),
            options.countDone ? context.db.collection(doc.outputs).countDocuments({}) : Promise.resolve(null),
          ]);
          const rangeRows = flying.reduce((sum, range) => sum + range.rows, 0);
          const remaining = doc.backfill.done ? 0 : Math.max(0, doc.backfill.total - doc.backfill.written);
          const unclaimed = Math.max(0, remaining - rangeRows);
          // A backfill still under way (or a range not yet written) counts as work to do.
          const backfilling = !doc.backfill.done && (doc.state === 'current' || doc.state === 'building');
          return {
            listener: doc.name,
            version: doc.version,
            state: doc.state,
            model: doc.model,
            source: doc.collection,
            outputs: doc.outputs_view,
            pending: queued - leased + unclaimed + (backfilling && unclaimed === 0 && rangeRows === 0 ? 1 : 0),
            in_flight: leased + rangeRows,
            failed,
            done,
            lag_seconds: oldest ? Math.max(0, (now - oldest.enqueued_at.getTime()) / 1000) : backfilling ? (now - doc.created_at.getTime()) / 1000 : 0,
            backfill_total: doc.backfill.total,
            backfill_remaining: remaining,
            note: doc.note,
            withdrawn,
            computing: flying.reduce((sum, range) => sum + (range.computed ?? 0), 0),
          };
        }),
      );
    },

    async failures(listener) {
      const rows = await collection<FailureDoc>(context, COLLECTIONS.failures)
        .find(listener === undefined ? {} : { listener })
        .sort({ listener: 1, failed_at: 1 })
        .toArray();
      return rows.map(
        (row): FailureRow => ({
          listener: row.listener,
          version: row.version,
          primary_key: [keyText(row.key)],
          attempts: row.attempts,
          error: row.error,
          failed_at: row.failed_at,
          withdrawn: row.withdrawn,
        }),
      );
    },

    async retry(listener) {
      const versions = await listeners.find({ name: listener, state: { $in: [...LIVE_STATES] } }).toArray();
      if (versions.length === 0) throw new SuperduperError(`superduper.retry: no listener named '${listener}'`);
      const failures = collection<FailureDoc>(context, COLLECTIONS.failures);
      const queue = collection<QueueDoc>(context, COLLECTIONS.queue);
      let count = 0;
      for (const version of versions) {
        for (const failure of await failures.find({ listener_id: version._id }).toArray()) {
          const now = new Date();
          await queue.updateOne(
            { _id: failure._id },
            { $max: { seq: failure.seq }, $min: { first_seq: failure.seq }, $setOnInsert: { listener_id: version._id, key: failure.key, enqueued_at: now, attempts: 0, next_at: now } },
            { upsert: true },
          );
          await failures.deleteOne({ _id: failure._id });
          count++;
        }
      }
      return count;
    },

    async outputsLocation(listener) {
      const doc = await listeners.findOne({ name: listener });
      if (!doc) throw new SuperduperError(`no listener named '${listener}'`);
      return doc.outputs_view;
    },

    artifact: (sha) => files.get(sha),

    async model(name): Promise<ModelRecord | undefined> {
      const doc = await models.findOne({ _id: name });
      return doc ? { name: doc.name, runtime: doc.runtime, output: doc.output, config: doc.config, artifact: doc.artifact, spec_hash: doc.spec_hash } : undefined;
    },
  };
}

/**
 * Results of a dry run marked as superduper.plan marks them (043_plan.sql):
 * destructive when they remove outputs, or rebuild a listener's; an
 * application when one of its components is.
 */
function planResults(results: ReadonlyArray<ApplyResult>): PlanResult[] {
  return results.map(({ components: children, ...result }) => {
    const components = children ? planResults(children) : undefined;
    const destructive =
      result.action === 'removed' || (result.action === 'rebuilding' && result.type !== 'vector_index') || (components?.some((c) => c.destructive) ?? false);
    return { ...result, destructive, ...(components ? { components } : {}) };
  });
}
