import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PackageDocument } from './format.js';

/** A template of the gallery shipped with superduper (templates/<name>/). */
export interface GalleryTemplate {
  name: string;
  /** The folder: a package, applied with `superduper apply <folder>` or by its name. */
  path: string;
  /** The first line of its README. */
  summary: string;
  variables: Record<string, { type?: string; default?: unknown; description?: string }>;
}

/** The templates folder beside the installed package (dist/ or src/ alike). */
export function galleryFolder(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'templates')) && existsSync(join(dir, 'package.json'))) return join(dir, 'templates');
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'templates');
}

export async function galleryTemplates(): Promise<GalleryTemplate[]> {
  const folder = galleryFolder();
  const names = (await readdir(folder, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
  return Promise.all(
    names.map(async (name) => {
      const path = join(folder, name);
      const document = JSON.parse(await readFile(join(path, 'superduper.json'), 'utf8')) as PackageDocument;
      const readme = await readFile(join(path, 'README.md'), 'utf8').catch(() => '');
      const summary = readme.split('\n').find((line) => line.trim() && !line.startsWith('#'))?.trim() ?? '';
      return { name, path, summary, variables: (document.application.variables ?? {}) as GalleryTemplate['variables'] };
    }),
  );
}

/** A gallery template's folder by name, if there is one. */
export async function galleryTemplate(name: string): Promise<string | undefined> {
  return (await galleryTemplates()).find((template) => template.name === name)?.path;
}
