import { configurationFrom } from '../config.js';
import { bytesNamedByRow, type RowSourceRules } from './row-source.js';

/** The largest image a sidecar fetches from a URL or reads from a file. */
const MAX_IMAGE_BYTES = 50 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 30_000;

/** The operator's rules for images a row names by text (see row-source.ts). */
export function imageRules(env: NodeJS.ProcessEnv = process.env): RowSourceRules {
  const config = configurationFrom(env);
  return {
    noun: 'image',
    dir: config.imageDir,
    dirVariable: 'SUPERDUPER_IMAGE_DIR',
    allowUrls: config.allowImageUrls,
    urlVariable: 'SUPERDUPER_ALLOW_IMAGE_URLS',
    maxBytes: MAX_IMAGE_BYTES,
    timeoutMs: FETCH_TIMEOUT_MS,
  };
}

/**
 * The bytes of an image a row names by text, where the sidecar's operator
 * allows it:
 * - SUPERDUPER_IMAGE_DIR: text is a file path inside that folder (relative to it,
 *   or absolute within it); a path that resolves outside it (.., symbolic links)
 *   is refused;
 * - SUPERDUPER_ALLOW_IMAGE_URLS=1: text starting with http:// or https:// is fetched.
 */
export async function imageBytesFor(model: string, text: string, env: NodeJS.ProcessEnv = process.env): Promise<Uint8Array> {
  return (await bytesNamedByRow(`transformers model "${model}"`, text, imageRules(env))).bytes;
}
