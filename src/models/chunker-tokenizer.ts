import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tokenLength } from '../chunking/token-length.js';
import type { LengthFunction } from '../chunking/types.js';
import { materializeFolder, modelCacheRoot } from './model-folder.js';
import type { RuntimeContext } from './types.js';

/**
 * The length function of a chunker with unit "tokens": the tokenizer of the
 * model it names, from that model's own stored files. Which files those are
 * was decided when the chunker was applied (superduper._chunker_tokenizer
 * copied their hashes into config.tokenizer_files), so this needs nothing
 * but the artifacts, and every sidecar counts with the same bytes.
 */
export async function tokenizerLength(chunker: string, tokenizer: string, files: Record<string, string>, context: RuntimeContext): Promise<LengthFunction> {
  // Named by the files, not the chunker: chunkers counting with one tokenizer share its folder.
  const id = createHash('sha256').update(JSON.stringify(Object.entries(files).sort())).digest('hex');
  const folder = await materializeFolder(chunker, join(modelCacheRoot(), `tokenizer-${id}`), files, context);
  // Imported here, not at the top: most sidecars never count tokens, and the import costs about 270 ms.
  const { AutoTokenizer } = await import('@huggingface/transformers');
  try {
    // A path, and local files only: a missing file fails here instead of becoming a download.
    return tokenLength(await AutoTokenizer.from_pretrained(folder, { local_files_only: true }));
  } catch (error) {
    throw new Error(`chunker "${chunker}": could not load the tokenizer of model "${tokenizer}" from its stored files (written to ${folder}): ${(error as Error).message}`, {
      cause: error,
    });
  }
}
