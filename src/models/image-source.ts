import { readFile, realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { configurationFrom } from '../config.js';

/** The largest image a sidecar fetches from a URL or reads from a file. */
const MAX_IMAGE_BYTES = 50 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 30_000;

/**
 * The bytes of an image a row names by text, where the sidecar's operator
 * allows it; a row is data anyone who can write the table chose, so by default
 * a sidecar opens nothing a row names:
 * - SUPERDUPER_IMAGE_DIR: text is a file path inside that folder (relative to it,
 *   or absolute within it); a path that resolves outside it (.., symbolic links)
 *   is refused;
 * - SUPERDUPER_ALLOW_IMAGE_URLS=1: text starting with http:// or https:// is fetched.
 */
export async function imageBytesFor(model: string, text: string, env: NodeJS.ProcessEnv = process.env): Promise<Uint8Array> {
  if (/^https?:\/\//i.test(text)) {
    if (!configurationFrom(env).allowImageUrls) {
      throw new Error(`transformers model "${model}": the row names an image by URL; sidecars fetch URLs only with SUPERDUPER_ALLOW_IMAGE_URLS=1`);
    }
    return fetchImage(model, text);
  }
  const dir = configurationFrom(env).imageDir;
  if (!dir) {
    throw new Error(
      `transformers model "${model}" takes images as bytes (a bytea column); got a string. ` +
        'Sidecars read file paths only inside SUPERDUPER_IMAGE_DIR, and fetch URLs only with SUPERDUPER_ALLOW_IMAGE_URLS=1',
    );
  }
  const root = await realpath(dir);
  let path: string;
  try {
    path = await realpath(resolve(root, text));
  } catch (error) {
    throw new Error(`transformers model "${model}": cannot read image file "${text}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const inside = relative(root, path);
  if (inside.startsWith('..') || isAbsolute(inside)) {
    throw new Error(`transformers model "${model}": image file "${text}" is outside SUPERDUPER_IMAGE_DIR (${root})`);
  }
  const bytes = await readFile(path);
  if (bytes.length > MAX_IMAGE_BYTES) throw new Error(`transformers model "${model}": image file "${text}" is larger than ${MAX_IMAGE_BYTES} bytes`);
  return bytes;
}

async function fetchImage(model: string, url: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'follow' });
  } catch (error) {
    throw new Error(`transformers model "${model}": cannot fetch image ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) throw new Error(`transformers model "${model}": fetching image ${url} got HTTP ${response.status}`);
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > MAX_IMAGE_BYTES) throw new Error(`transformers model "${model}": image ${url} is larger than ${MAX_IMAGE_BYTES} bytes`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length > MAX_IMAGE_BYTES) throw new Error(`transformers model "${model}": image ${url} is larger than ${MAX_IMAGE_BYTES} bytes`);
  return bytes;
}
