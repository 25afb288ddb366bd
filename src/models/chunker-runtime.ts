import { splitMarkdown } from '../chunking/markdown.js';
import { splitRecursive } from '../chunking/recursive.js';
import type { Chunk, LengthFunction } from '../chunking/types.js';
import type { LoadedModel, ModelRecord, ModelRuntime } from './types.js';

export interface ChunkerConfig {
  /** recursive: paragraphs, lines, sentences, words; markdown: sections at headings, then recursive. */
  method: 'recursive' | 'markdown';
  size: number;
  overlap?: number;
  /** What size and overlap count: characters (default) or whitespace-separated words. */
  unit?: 'characters' | 'words';
}

const METHODS = { recursive: splitRecursive, markdown: splitMarkdown } as const;
const UNITS: Record<string, LengthFunction> = {
  characters: (text) => text.length,
  words: (text) => text.split(/\s+/).filter(Boolean).length,
};

/** Checks a chunker's config, saying what is wrong and what is expected. */
export function checkChunkerConfig(name: string, config: Record<string, unknown>): ChunkerConfig {
  const known = new Set(['method', 'size', 'overlap', 'unit']);
  for (const key of Object.keys(config)) if (!known.has(key)) throw new Error(`chunker "${name}": unknown config field "${key}" (expected method, size, overlap, unit)`);
  const { method, size, overlap = 0, unit = 'characters' } = config as Partial<ChunkerConfig>;
  if (!method || !(method in METHODS)) throw new Error(`chunker "${name}": method must be "recursive" or "markdown" (got ${JSON.stringify(method)})`);
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) throw new Error(`chunker "${name}": size must be a positive integer (got ${JSON.stringify(size)})`);
  if (typeof overlap !== 'number' || !Number.isInteger(overlap) || overlap < 0 || overlap >= size) {
    throw new Error(`chunker "${name}": overlap must be an integer from 0 to less than size ${size} (got ${JSON.stringify(overlap)})`);
  }
  if (!(unit in UNITS)) throw new Error(`chunker "${name}": unit must be "characters" or "words" (got ${JSON.stringify(unit)})`);
  return { method, size, overlap, unit };
}

/**
 * Text into chunks, each with its character span (and, for Markdown, its
 * heading path): one list per input. Pure computation in the sidecar's
 * process, nothing stored but its config.
 */
export class ChunkerRuntime implements ModelRuntime {
  readonly name = 'chunker';

  async load(model: ModelRecord): Promise<LoadedModel> {
    const config = checkChunkerConfig(model.name, model.config);
    const split = METHODS[config.method];
    const options = { size: config.size, overlap: config.overlap, length: UNITS[config.unit ?? 'characters'] };
    return {
      async predict(inputs): Promise<Chunk[][]> {
        return inputs.map((input) => {
          if (typeof input !== 'string') throw new Error(`chunker "${model.name}" takes text; got a ${input === null ? 'NULL' : typeof input}`);
          return split(input, options);
        });
      },
    };
  }
}
