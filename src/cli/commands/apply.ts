import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { StoredModel } from '../../components/model.js';
import { SuperduperError } from '../../errors.js';
import { openDatabase } from '../context.js';
import { showProgress } from '../progress.js';

/**
 * Applies the components of a JSON file: one spec, an array of specs, or
 * {"components": [...]}. A model spec may name its file with "file" (a path
 * relative to the JSON file); it is stored in the database.
 */
export async function applyCommand(file: string, uri: string | undefined, options: { wait: boolean }): Promise<void> {
  const specs = await readSpecs(file);
  const db = await openDatabase(uri);
  try {
    const components = specs.map((spec) => toComponent(spec, dirname(resolve(file))));
    const results = await db.apply(...components);
    for (const result of results) {
      const extra = result.backfill !== undefined ? `, ${result.backfill} existing row(s) to compute` : '';
      process.stdout.write(`${result.type} ${result.name}: ${result.action}${result.version ? ` (version ${result.version})` : ''}${extra}\n`);
    }
    const started = results.filter((r) => r.type === 'listener' && (r.action === 'created' || r.action === 'rebuilding' || r.action === 'updated'));
    if (!options.wait || started.length === 0) return;
    const sidecars = (await db.sidecars()).filter((sidecar) => sidecar.seen < 15);
    if (sidecars.length === 0) {
      process.stdout.write('no sidecar is running, so nothing is computed yet: start one with "superduper start <uri>".\n');
      return;
    }
    await showProgress(db, started.map((r) => r.name));
  } finally {
    await db.close();
  }
}

async function readSpecs(file: string): Promise<Array<Record<string, unknown>>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new SuperduperError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { components?: unknown }).components ?? [parsed];
  if (!Array.isArray(list) || list.some((item) => typeof item !== 'object' || item === null)) {
    throw new SuperduperError(`${file}: expected a component spec, an array of them, or {"components": [...]}`);
  }
  return list as Array<Record<string, unknown>>;
}

function toComponent(spec: Record<string, unknown>, baseDir: string): Record<string, unknown> | StoredModel {
  if (spec.type !== 'model' || typeof spec.file !== 'string') return spec;
  const path = resolve(baseDir, spec.file);
  const { file: _file, ...rest } = spec;
  return {
    kind: 'model',
    name: String(spec.name),
    runtime: String(spec.runtime),
    spec: rest,
    artifact: async () => {
      try {
        return new Uint8Array(await readFile(path));
      } catch (error) {
        throw new SuperduperError(`model "${String(spec.name)}": cannot read its file ${path}: ${(error as Error).message}`);
      }
    },
  };
}
