import { SuperduperError } from '../errors.js';
import type { ApplicationComponent } from '../components/application.js';
import type { Applicable, Component } from '../components/component.js';
import type { FunctionModel } from '../models/function-runtime.js';
import { componentsOf } from './export.js';
import type { ReadPackage } from './read.js';

export interface PackageApplyOptions {
  /** Values of the package's template variables (given as text they are read as their type). */
  values?: Record<string, unknown>;
  /** The function models the package names: their code is never in a package. */
  functions?: readonly FunctionModel[];
}

/**
 * A read package as one application to apply (or plan): its template given
 * the values, each component read as the spec version it was exported in,
 * each model's files from the package, and the function models the package
 * names replaced by those this process provides (a missing one is refused,
 * by name, before anything is applied).
 */
export function packageApplication(read: ReadPackage, path: string, options: PackageApplyOptions = {}): ApplicationComponent {
  const { document, blobs } = read;
  const application = structuredClone(document.application);
  if (options.values && Object.keys(options.values).length > 0) {
    if (typeof application.variables !== 'object' || application.variables === null) {
      throw new SuperduperError(`package ${path}: its application declares no variables, so there is nothing to give values to`);
    }
    application.values = { ...(application.values as object | undefined), ...options.values };
  }
  const provided = new Map((options.functions ?? []).map((model) => [model.name, model]));
  const missing = document.functions.filter((name) => !provided.has(name));
  if (missing.length > 0) {
    throw new SuperduperError(`package ${path}: it needs the function model(s) ${missing.map((name) => `"${name}"`).join(', ')}, whose code is never in a package; nothing was applied`, {
      hint: `Apply it from a TypeScript process that provides them: db.applyPackage(path, { functions: [functionModel({ name: '${missing[0]}', ... })] }).`,
    });
  }
  application.spec_version ??= document.spec_versions.application;
  const children: Applicable[] = [];
  application.components = componentsOf(application).map((component) => {
    const spec: Record<string, unknown> = { ...component, spec_version: component.spec_version ?? document.spec_versions[String(component.type)] };
    if (spec.type !== 'model') return spec;
    const name = String(spec.name);
    const own = provided.get(name);
    if (own) {
      children.push(own);
      return own.spec;
    }
    const blob = (sha256: unknown) => {
      const bytes = typeof sha256 === 'string' ? blobs.get(sha256) : undefined;
      if (!bytes) throw new SuperduperError(`package ${path}: model "${name}" needs file ${String(sha256)}, which the package does not hold; nothing was applied`);
      return bytes;
    };
    const files = (spec.config as { files?: Record<string, unknown> } | undefined)?.files;
    if (spec.artifact === undefined && !files) return spec;
    const model: Component = {
      kind: 'model',
      name,
      spec,
      ...(spec.artifact !== undefined ? { artifact: async () => blob(spec.artifact) } : {}),
      ...(files ? { files: Object.fromEntries(Object.entries(files).map(([file, sha256]) => [file, async () => blob(sha256)])) } : {}),
    };
    // Checked now: a package that lacks a file is refused before the apply.
    if (spec.artifact !== undefined) blob(spec.artifact);
    for (const sha256 of Object.values(files ?? {})) blob(sha256);
    children.push(model);
    return spec;
  });
  return { kind: 'application', name: String(application.name), spec: application, children };
}
