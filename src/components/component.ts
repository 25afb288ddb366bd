import type { ModelUpload } from '../backends/backend.js';
import type { FunctionRuntime } from '../models/function-runtime.js';

/**
 * What every component (model, listener, vector index, and each type added
 * later) is to the client: its spec, as superduper.apply() takes it, plus what
 * must happen around the apply. The client knows no component type by name:
 * a new type is one file here that makes such objects, and one in sql/.
 */
export interface Component {
  /** The component type, as in the spec's "type" ('model', 'listener', 'vector_index'). */
  readonly kind: string;
  readonly name: string;
  readonly spec: Record<string, unknown>;
  /** Components applied with this one, before it (a listener's model given as an object). */
  readonly uses?: readonly Component[];
  /** A file stored in the database (by SHA-256) before the spec is applied: the spec's "artifact". */
  readonly artifact?: () => Promise<Uint8Array>;
  /** Further files (a model folder), by path: stored as config.files = {path: SHA-256}. */
  readonly files?: Record<string, () => Promise<Uint8Array>>;
  /** What this process must hold for its sidecars (a function model's code). */
  attach?(functions: FunctionRuntime): void;
  /**
   * Components this one holds (an application's): their specs are inside its
   * own, their files are stored and their code attached with it.
   */
  readonly children?: readonly Applicable[];
}

/** A component object, or a spec written by hand (JSON, as superduper.apply takes it). */
export type Applicable = Component | Record<string, unknown>;

export function isComponent(value: Applicable): value is Component {
  return typeof (value as Component).kind === 'string' && typeof (value as Component).spec === 'object' && (value as Component).spec !== null;
}

/**
 * The specs to apply, in order (each component after those it uses, each once),
 * and the files to store with them, read now: no file is read while the apply's
 * transaction is open.
 */
export async function componentSpecs(
  components: readonly Applicable[],
  functions: FunctionRuntime,
): Promise<{ specs: Array<Record<string, unknown>>; uploads: ModelUpload[] }> {
  const specs: Array<Record<string, unknown>> = [];
  const uploads: ModelUpload[] = [];
  const seen = new Set<Applicable>();
  const add = async (component: Applicable, held = false): Promise<void> => {
    if (seen.has(component)) return;
    seen.add(component);
    if (!isComponent(component)) {
      if (!held) specs.push(component);
      return;
    }
    for (const used of component.uses ?? []) await add(used, held);
    for (const child of component.children ?? []) await add(child, true);
    component.attach?.(functions);
    if (!held) specs.push(component.spec);
    if (component.artifact || component.files) {
      const files: Record<string, Uint8Array> = {};
      for (const [path, load] of Object.entries(component.files ?? {})) files[path] = await load();
      uploads.push({ spec: component.spec, ...(component.artifact ? { artifact: await component.artifact() } : {}), ...(component.files ? { files } : {}) });
    }
  };
  for (const component of components) await add(component);
  return { specs, uploads };
}
