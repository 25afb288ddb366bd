import { SuperduperError } from '../errors.js';
import type { Registry } from '../backends/backend.js';
import { PACKAGE_FORMAT, PACKAGE_FORMAT_VERSION, type PackageDocument } from './format.js';
import { writePackage } from './write.js';

/**
 * Exports an application into a package (a folder, or a .zip): its spec, or
 * the template it was applied from, and every file its models need, by
 * SHA-256. A function model is named in "functions", never its code.
 */
export async function exportApplication(registry: Registry, name: string, target: string): Promise<PackageDocument> {
  const row = await registry.application(name);
  if (!row) throw new SuperduperError(`no application named "${name}"`, { hint: 'superduper.applications lists them (SELECT name FROM superduper.applications).' });
  const application = row.template ?? row.spec;
  const models = componentsOf(application).filter((component) => component.type === 'model');
  const blobs = new Map<string, Uint8Array>();
  for (const model of models) {
    const files = (model.config as { files?: Record<string, unknown> } | undefined)?.files ?? {};
    for (const sha256 of [model.artifact, ...Object.values(files)]) {
      if (typeof sha256 === 'string' && !blobs.has(sha256)) blobs.set(sha256, await registry.artifact(sha256));
    }
  }
  const document: PackageDocument = {
    format: PACKAGE_FORMAT,
    format_version: PACKAGE_FORMAT_VERSION,
    application,
    spec_versions: row.specVersions,
    files: Object.fromEntries([...blobs].map(([sha256, bytes]) => [`blobs/${sha256}`, { sha256, bytes: bytes.byteLength }])),
    functions: models.filter((model) => model.runtime === 'function').map((model) => String(model.name)),
    exported_at: new Date().toISOString(),
  };
  await writePackage(target, document, blobs);
  return document;
}

export function componentsOf(application: Record<string, unknown>): Array<Record<string, unknown>> {
  return Array.isArray(application.components) ? (application.components as Array<Record<string, unknown>>) : [];
}
