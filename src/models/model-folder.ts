import { configuration } from '../config.js';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import type { RuntimeContext } from './types.js';

/**
 * Model folders rebuilt on local disk from files stored in the database, for
 * libraries that load a model from a directory (transformers.js reads
 * config.json, tokenizer.json and onnx/model.onnx by path).
 */

/** Where model folders go: SUPERDUPER_CACHE_DIR, else <tmpdir>/superduper-models. */
export function modelCacheRoot(): string {
  return configuration().cacheDir;
}

/**
 * Writes files (relative path → SHA-256 of a stored artifact) under folder and
 * returns the folder. A file already there with that content is kept, so a
 * restarted sidecar fetches nothing; the content is checked by hash rather than
 * trusted by name because a crash or a user may have left a different file.
 * Each file is written under a temporary name and renamed, so that another
 * sidecar on the same machine never reads half a file.
 */
export async function materializeFolder(
  model: string,
  folder: string,
  files: Record<string, string>,
  context: RuntimeContext,
): Promise<string> {
  const targets = Object.entries(files).map(([path, sha]) => ({ path, sha, target: safeTarget(model, folder, path, sha) }));
  for (const { path, sha, target } of targets) {
    if ((await fileSha256(target)) === sha) continue;
    const bytes = await context.fetchArtifact(sha);
    await mkdir(dirname(target), { recursive: true });
    const temporary = `${target}.${randomUUID()}.partial`;
    try {
      await writeFile(temporary, bytes);
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true });
      throw new Error(`model "${model}": could not write ${path} to ${folder}: ${(error as Error).message}; set SUPERDUPER_CACHE_DIR to a writable folder`, {
        cause: error,
      });
    }
  }
  return folder;
}

/** The path of a stored file inside folder; a path from the database must not leave it. */
function safeTarget(model: string, folder: string, path: string, sha: string): string {
  if (typeof sha !== 'string' || !/^[0-9a-f]{64}$/.test(sha)) {
    throw new Error(`model "${model}": file "${path}" has no stored artifact hash (got ${JSON.stringify(sha)}); apply the model again to store its files`);
  }
  const relative = normalize(path);
  if (path === '' || isAbsolute(path) || relative.split(sep).includes('..') || path.includes('\\')) {
    throw new Error(`model "${model}": file path "${path}" must be relative to the model folder, without ".."`);
  }
  return join(folder, relative);
}

async function fileSha256(path: string): Promise<string | undefined> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return hash.digest('hex');
}
