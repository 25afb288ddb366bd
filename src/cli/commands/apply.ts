import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { ApplyResult } from '../../backends/types.js';
import type { Superduper } from '../../client.js';
import type { Applicable } from '../../components/component.js';
import { packageApplication } from '../../packages/components.js';
import { galleryTemplate } from '../../packages/gallery.js';
import { readPackage } from '../../packages/read.js';
import type { StoredModel } from '../../components/model.js';
import { SuperduperError } from '../../errors.js';
import { openDatabase } from '../context.js';
import { showProgress, summaryLines } from '../progress.js';
import { destructiveParts, resultLines } from '../results.js';

export interface ApplyOptions {
  wait: boolean;
  /** Show the plan and stop. */
  dryRun?: boolean;
  /** Apply a plan that removes or rebuilds without asking. */
  yes?: boolean;
  /** Template variables, as name=value. */
  vars?: string[];
}

/**
 * Applies the components of a JSON file: one spec, an array of specs, or
 * {"components": [...]}. A model spec may name its file with "file" (a path
 * relative to the JSON file); it is stored in the database. First the plan:
 * shown, and when it removes or rebuilds outputs, applied only with --yes or
 * a "y" typed at the prompt.
 */
export async function applyCommand(file: string, uri: string | undefined, options: ApplyOptions): Promise<void> {
  const components = await loadComponents(file, options.vars ?? []);
  const db = await openDatabase(uri);
  try {
    const plan = await db.plan(...components);
    if (options.dryRun) {
      process.stdout.write(`${resultLines(plan).join('\n')}\n`);
      return;
    }
    const destructive = destructiveParts(plan);
    if (destructive.length > 0 && !options.yes) {
      process.stdout.write(`the plan:\n${resultLines(plan, '  ').join('\n')}\n`);
      if (!(await confirm(`this removes or replaces outputs: ${destructive.join(', ')}. Apply? [y/N] `))) {
        throw new SuperduperError(`not applied: ${destructive.join(', ')} would be removed or rebuilt`, {
          hint: 'Pass --yes to apply it without asking, or --dry-run to see the plan only.',
        });
      }
    }
    const results = await db.apply(...components);
    process.stdout.write(`${resultLines(results).join('\n')}\n`);
    const started = listenersStarted(results);
    if (!options.wait || started.length === 0) return;
    const sidecars = (await db.sidecars()).filter((sidecar) => sidecar.seen < 15);
    if (sidecars.length === 0) {
      process.stdout.write('no sidecar is running, so nothing is computed yet: start one with "npx superduper start <uri>".\n');
      return;
    }
    const startedAt = Date.now();
    const outcomes = await showProgress(db, started);
    process.stdout.write(`${summaryLines(outcomes, (Date.now() - startedAt) / 1000).join('\n')}\n`);
    const failed = outcomes.filter((o) => o.failed > 0);
    if (failed.length > 0) {
      // The apply itself worked; its work did not all: a script must see that.
      throw new SuperduperError(`applied, but ${failed.map((o) => `${o.failed} row(s) of ${o.listener}`).join(' and ')} failed`, {
        hint: `See them with "npx superduper failures ${failed[0]!.listener}", fix the rows or the model, then add --retry.`,
      });
    }
  } finally {
    await db.close();
  }
}

/** What applying the file would do (superduper.plan), shown; nothing is applied. */
export async function planCommand(file: string, uri: string | undefined, options: { json: boolean; vars?: string[] }): Promise<void> {
  const components = await loadComponents(file, options.vars ?? []);
  const db = await openDatabase(uri);
  try {
    const plan = await db.plan(...components);
    process.stdout.write(options.json ? `${JSON.stringify(plan, null, 2)}\n` : `${resultLines(plan).join('\n')}\n`);
  } finally {
    await db.close();
  }
}

/**
 * What a file holds, to apply: a package (a folder or a .zip, read and
 * checked in full first), or JSON specs.
 */
async function loadComponents(given: string, vars: readonly string[]): Promise<Applicable[]> {
  // Not a path: a template of the gallery, by name.
  const exists = await stat(given).then(() => true, () => false);
  const file = exists ? given : await galleryTemplate(given);
  if (file === undefined) {
    throw new SuperduperError(`${given}: no such file or folder, and no template of the gallery has that name`, {
      hint: '"npx superduper templates" lists the gallery.',
    });
  }
  const folder = await stat(file).then((s) => s.isDirectory(), () => false);
  if (folder || file.toLowerCase().endsWith('.zip')) {
    return [packageApplication(await readPackage(file), file, { values: parseVars(vars) })];
  }
  return withVariables(await readSpecs(file), file, vars).map((spec) => toComponent(spec, dirname(resolve(file))));
}

/** Listeners whose backfill an apply started, an application's included. */
function listenersStarted(results: readonly ApplyResult[]): string[] {
  return results.flatMap((r) =>
    r.components
      ? listenersStarted(r.components)
      : r.type === 'listener' && (r.action === 'created' || r.action === 'rebuilding' || r.action === 'updated')
        ? [r.name]
        : [],
  );
}

/** Asks on the terminal; without one (a script, CI), the answer is no. */
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await prompt.question(question)).trim());
  } finally {
    prompt.close();
  }
}

/**
 * --var name=value, given to the file's template(s): the applications that
 * declare "variables" get them in "values". A --var no template can take is
 * refused.
 */
function withVariables(specs: Array<Record<string, unknown>>, file: string, vars: readonly string[]): Array<Record<string, unknown>> {
  if (vars.length === 0) return specs;
  const values = parseVars(vars);
  const templates = specs.filter((spec) => spec.type === 'application' && typeof spec.variables === 'object' && spec.variables !== null);
  if (templates.length === 0) {
    throw new SuperduperError(`${file} declares no variables, so --var has nothing to set`, {
      hint: 'Variables belong to an application template: {"type": "application", "variables": {...}, ...}.',
    });
  }
  return specs.map((spec) => (templates.includes(spec) ? { ...spec, values: { ...(spec.values as object | undefined), ...values } } : spec));
}

async function readSpecs(file: string): Promise<Array<Record<string, unknown>>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new SuperduperError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // Read, but not JSON: say where (Node's message gives the position).
    throw new SuperduperError(`${file} is not valid JSON: ${(error as Error).message}`, {
      hint: 'A spec file holds one component spec, an array of them, or {"components": [...]} (docs/sql.md has every field).',
    });
  }
  // {"components": [...]} without a "type" lists specs; with one (an
  // application) it is a spec itself.
  const wrapper = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && !('type' in parsed) ? (parsed as { components?: unknown }).components : undefined;
  const list = Array.isArray(parsed) ? parsed : wrapper ?? [parsed];
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

/** --var name=value, as an object of values. */
function parseVars(vars: readonly string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const item of vars) {
    const at = item.indexOf('=');
    if (at <= 0) throw new SuperduperError(`--var ${item}: expected name=value, as in --var table=docs`);
    values[item.slice(0, at)] = item.slice(at + 1);
  }
  return values;
}
