import { SuperduperError } from '../../errors.js';
import { renderTemplate } from '../../packages/template.js';
import type { ApplyResult } from '../types.js';
import { collection, type MongoContext } from './context.js';
import { COLLECTIONS } from './names.js';

/** An application as stored in superduper.applications. */
export interface ApplicationDoc {
  _id: string;
  name: string;
  spec: Record<string, unknown>;
  template: Record<string, unknown> | null;
  variables: Record<string, unknown> | null;
  version: number;
  description: string | null;
  /** In the order it applies them. */
  components: Array<{ type: string; name: string }>;
  created_at: Date;
  updated_at: Date;
}

/**
 * A plan's run through apply (superduper plan): each step decides what it
 * would do and returns that before writing anything. What it would remove is
 * remembered, so that the later steps of the same plan see it gone.
 */
export interface DryRun {
  /** "<type> <name>" of each component the plan removes. */
  removed: Set<string>;
  /** SHA-256 of the model files the plan's specs bring (stored by the apply, not by the plan). */
  planned: Set<string>;
  /** A listener's rows to compute, and the tokens they send to a model billed per token. */
  estimate(spec: { collection: string; filter: Record<string, unknown> | null; model: string; keys: string[] }): Promise<{ rows: number; tokens_estimate?: number }>;
}

/** What applications need of the registry they group components of. */
export interface ComponentRegistry {
  /** Parses and checks specs (names they refer to included) without writing anything. */
  check(raw: ReadonlyArray<unknown>, dry?: DryRun): Promise<void>;
  /** Checks, then applies (or, dry, plans), specs of models, listeners and vector indexes. */
  applySpecs(raw: ReadonlyArray<unknown>, dry?: DryRun): Promise<ApplyResult[]>;
  removeComponent(name: string, keepOutputs: boolean, dry?: DryRun): Promise<ApplyResult[]>;
  exists(type: string, name: string, dry?: DryRun): Promise<boolean>;
  /** What uses a model: listeners, vector indexes (less what a plan removes first). */
  modelUsers(name: string, dry?: DryRun): Promise<string[]>;
}

/**
 * Applications on MongoDB: the rules of sql/functions/042_applications.sql
 * (and its messages), in TypeScript, as the rest of this backend's registry.
 * MongoDB gives no transaction here, so every component is checked before
 * anything is written; a connection lost midway can leave part applied
 * (apply again: it is idempotent).
 */
export function mongoApplications(context: MongoContext, registry: ComponentRegistry) {
  const applications = collection<ApplicationDoc>(context, COLLECTIONS.applications);

  /** Lets go of one component: removed, unless another application holds it or it is a model something uses. */
  async function letGo(application: string, type: string, name: string, keepOutputs: boolean, dry?: DryRun): Promise<ApplyResult[]> {
    const others = (await applications.find({ _id: { $ne: application }, components: { $elemMatch: { type, name } } }).toArray()).map((a) => a.name).sort();
    if (others.length > 0) return [{ type, name, action: 'kept', held_by: others.join(', ') }];
    if (!(await registry.exists(type, name, dry))) return [];
    if (type === 'model') {
      const users = await registry.modelUsers(name, dry);
      if (users.length > 0) return [{ type, name, action: 'kept', used_by: users.join(', ') }];
    }
    try {
      return await registry.removeComponent(name, keepOutputs, dry);
    } catch (error) {
      throw new SuperduperError(`superduper: application "${application}": cannot remove its ${type.replace('_', ' ')} "${name}": ${(error as Error).message.replace(/^superduper\.remove: /, '')}`, {
        hint: 'Remove what uses it first, or keep it in the application.',
      });
    }
  }

  return {
    async has(name: string): Promise<boolean> {
      return (await applications.countDocuments({ _id: name })) > 0;
    },

    async get(name: string): Promise<ApplicationDoc | null> {
      return applications.findOne({ _id: name });
    },

    async apply(raw: Record<string, unknown>, dry?: DryRun): Promise<ApplyResult> {
      let spec = raw;
      let template: Record<string, unknown> | null = null;
      let variables: Record<string, unknown> | null = null;
      if ('variables' in raw) {
        const rendered = renderTemplate(raw);
        ({ spec, template } = rendered);
        variables = rendered.values;
      } else if ('values' in raw) {
        throw new SuperduperError(`superduper.apply: application "${String(raw.name ?? '(no name)')}": "values" given, but no "variables" declared`, {
          hint: 'Declare each variable in "variables": {"table": {"type": "table", "default": "docs"}}, and use it as {{table}}.',
        });
      }
      const { spec_version: _version, ...body } = spec;
      const name = body.name;
      if (typeof name !== 'string' || name.trim() === '') throw new SuperduperError('superduper.apply: an application needs a "name" (a non-empty string)');
      const unknown = Object.keys(body).filter((k) => !['type', 'name', 'components', 'description'].includes(k)).sort();
      if (unknown.length > 0) {
        throw new SuperduperError(`superduper.apply: application "${name}": unknown field(s) ${unknown.map((k) => `'${k}'`).join(', ')}`, {
          hint: 'An application has "name", "components" (an array of component specs), and optionally "description", and "variables" and "values" for a template.',
        });
      }
      const components = body.components;
      if (!Array.isArray(components) || components.length === 0) {
        throw new SuperduperError(`superduper.apply: application "${name}": "components" must be a non-empty array of component specs`);
      }
      const seen = new Set<string>();
      components.forEach((child: unknown, i) => {
        const c = child as Record<string, unknown>;
        if (typeof c !== 'object' || c === null || typeof c.type !== 'string' || typeof c.name !== 'string') {
          throw new SuperduperError(`superduper.apply: application "${name}": component ${i + 1} must be a spec with "type" and "name"`);
        }
        if (c.type === 'application') {
          throw new SuperduperError(`superduper.apply: application "${name}": component ${i + 1} is an application ("${c.name}"); applications do not nest`, {
            hint: "List that application's components in this one, or apply the two applications side by side.",
          });
        }
        const key = `${c.type} ${c.name}`;
        if (seen.has(key)) throw new SuperduperError(`superduper.apply: application "${name}": ${c.type} "${c.name}" is listed twice`);
        seen.add(key);
      });
      for (const type of ['listener', 'vector_index', 'model']) {
        if (await registry.exists(type, name, dry)) {
          throw new SuperduperError(`superduper.apply: application "${name}": a component is named "${name}" already`, {
            hint: 'Give the application a name of its own (superduper.remove would take the application for it).',
          });
        }
      }
      const listed = (components as Array<Record<string, unknown>>).map((c) => ({ type: String(c.type), name: String(c.name) }));
      // Everything is checked before anything is written.
      await registry.check(components, dry);

      const old = await applications.findOne({ _id: name });
      const removed: ApplyResult[] = [];
      for (const held of [...(old?.components ?? [])].reverse()) {
        if (!listed.some((c) => c.type === held.type && c.name === held.name)) removed.push(...(await letGo(name, held.type, held.name, false, dry)));
      }
      const results = await registry.applySpecs(components, dry);
      const changed = removed.length > 0 || results.some((r) => r.action !== 'unchanged');
      const updated = !old || changed || JSON.stringify(old.spec) !== JSON.stringify(body) || JSON.stringify(old.variables ?? null) !== JSON.stringify(variables);
      // A new version when its identity changes (sql/functions/044_identity.sql):
      // a component added, removed or moved, or one changed in a breaking way (a
      // new version of it); not for a description or a setting.
      const breaking =
        !!old &&
        (JSON.stringify(old.components) !== JSON.stringify(listed) ||
          results.some((r) => r.action === 'created' || r.action === 'rebuilding' || (r.type === 'model' && r.action === 'updated' && r.rebuilding !== undefined)));
      const version = !old ? 1 : old.version + (breaking ? 1 : 0);
      const action = !old ? 'created' : updated ? 'updated' : 'unchanged';
      if (dry) return { type: 'application', name, action, version, components: [...removed, ...results] };
      const now = new Date();
      const description = typeof body.description === 'string' ? body.description : null;
      if (!old) {
        await applications.insertOne({ _id: name, name, spec: body, template, variables, version: 1, description, components: listed, created_at: now, updated_at: now });
      } else if (updated) {
        await applications.updateOne({ _id: name }, { $set: { spec: body, template, variables, description, components: listed, updated_at: now, version } });
      }
      return { type: 'application', name, action, version, components: [...removed, ...results] };
    },

    async remove(name: string, keepOutputs: boolean): Promise<ApplyResult[]> {
      const doc = await applications.findOne({ _id: name });
      if (!doc) return [];
      const results: ApplyResult[] = [];
      for (const held of [...doc.components].reverse()) results.push(...(await letGo(name, held.type, held.name, keepOutputs)));
      await applications.deleteOne({ _id: name });
      return [...results, { type: 'application', name, action: 'removed' }];
    },
  };
}
