import pLimit from 'p-limit';
import { splitMarkdown } from '../chunking/markdown.js';
import { splitRecursive } from '../chunking/recursive.js';
import type { Chunk, LengthFunction } from '../chunking/types.js';
import { extractText } from '../documents/extract-text.js';
import { tokenizerLength } from './chunker-tokenizer.js';
import type { LoadedModel, ModelRecord, ModelRuntime, RuntimeContext } from './types.js';

export interface ChunkerConfig {
  /** recursive: paragraphs, lines, sentences, words; markdown: sections at headings, then recursive. */
  method: 'recursive' | 'markdown';
  size: number;
  overlap?: number;
  /**
   * What size and overlap count: characters (default), whitespace-separated
   * words, or tokens of the tokenizer of the model named by `tokenizer`.
   */
  unit?: 'characters' | 'words' | 'tokens';
  /** unit "tokens": the name of a model whose folder holds tokenizer.json (a transformers model, usually the one that embeds the chunks). */
  tokenizer?: string;
  /**
   * unit "tokens": {file: SHA-256} of that model's tokenizer files, written by
   * apply (superduper._chunker_tokenizer), not by users: see chunker-tokenizer.ts.
   */
  tokenizer_files?: Record<string, string>;
  /**
   * What each chunk's text becomes (what gets embedded), e.g.
   * "{title}\n{headings}\n{text}": {text} is the chunk, {headings} its heading
   * path joined by " > ", and {column} another key column of the listener's row.
   */
  format?: string;
  /**
   * What the listener's first key column holds: "text" (default), the text to
   * split; or "document", a document whose text is extracted first: bytes (a
   * bytea column) or text naming a file or URL where the sidecar's operator
   * allows it (PDF, DOCX, HTML, Markdown, plain text; see src/documents/).
   */
  source?: 'text' | 'document';
}

const METHODS = { recursive: splitRecursive, markdown: splitMarkdown } as const;
/** Units that need nothing loaded; "tokens" is built from a tokenizer when the chunker loads. */
const UNITS: Record<string, LengthFunction> = {
  characters: (text) => text.length,
  words: (text) => text.split(/\s+/).filter(Boolean).length,
};
const UNIT_NAMES = [...Object.keys(UNITS), 'tokens'];
const FIELDS = ['method', 'size', 'overlap', 'unit', 'tokenizer', 'tokenizer_files', 'format', 'source'];

/** Checks a chunker's config, saying what is wrong and what is expected. */
export function checkChunkerConfig(name: string, config: Record<string, unknown>): ChunkerConfig {
  for (const key of Object.keys(config)) if (!FIELDS.includes(key)) throw new Error(`chunker "${name}": unknown config field "${key}" (expected ${FIELDS.join(', ')})`);
  const { method, size, overlap = 0, unit = 'characters', tokenizer, tokenizer_files: tokenizerFiles, format, source = 'text' } = config as Partial<ChunkerConfig>;
  if (!method || !(method in METHODS)) throw new Error(`chunker "${name}": method must be "recursive" or "markdown" (got ${JSON.stringify(method)})`);
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) throw new Error(`chunker "${name}": size must be a positive integer (got ${JSON.stringify(size)})`);
  if (typeof overlap !== 'number' || !Number.isInteger(overlap) || overlap < 0 || overlap >= size) {
    throw new Error(`chunker "${name}": overlap must be an integer from 0 to less than size ${size} (got ${JSON.stringify(overlap)})`);
  }
  if (!UNIT_NAMES.includes(unit)) throw new Error(`chunker "${name}": unit must be "characters", "words" or "tokens" (got ${JSON.stringify(unit)})`);
  checkTokenizer(name, unit, tokenizer, tokenizerFiles);
  if (format !== undefined && (typeof format !== 'string' || !format.includes('{text}'))) {
    throw new Error(`chunker "${name}": format must be a string holding {text}, e.g. "{title}\\n{text}" (got ${JSON.stringify(format)})`);
  }
  if (source !== 'text' && source !== 'document') {
    throw new Error(`chunker "${name}": source must be "text" (the key column holds the text) or "document" (it holds a file's bytes, or names a file or URL) (got ${JSON.stringify(source)})`);
  }
  const checked: ChunkerConfig = { method, size, overlap, unit, source };
  if (tokenizer !== undefined) checked.tokenizer = tokenizer;
  if (tokenizerFiles !== undefined) checked.tokenizer_files = tokenizerFiles;
  if (format !== undefined) checked.format = format;
  return checked;
}

/** The same rules as superduper._chunker_tokenizer (SQL), which also checks that the named model has a tokenizer. */
function checkTokenizer(name: string, unit: string, tokenizer: unknown, files: unknown): void {
  if (unit !== 'tokens') {
    if (tokenizer !== undefined || files !== undefined) {
      throw new Error(`chunker "${name}": tokenizer is used only with unit "tokens" (unit is "${unit}"); give unit "tokens" to count in that model's tokens, or leave tokenizer out`);
    }
    return;
  }
  if (typeof tokenizer !== 'string' || tokenizer === '') {
    throw new Error(
      `chunker "${name}": unit "tokens" counts with an embedding model's tokenizer, but no tokenizer is named (got ${JSON.stringify(tokenizer)}); ` +
        "give tokenizer, the name of a transformers model applied with its folder, e.g. chunkerModel({ ..., unit: 'tokens', tokenizer: 'minilm' })",
    );
  }
  if (files !== undefined && (typeof files !== 'object' || files === null || Array.isArray(files) || !Object.values(files).every((sha) => typeof sha === 'string'))) {
    throw new Error(`chunker "${name}": tokenizer_files must be {file: SHA-256}, as apply writes it (got ${JSON.stringify(files)}); leave it out and apply the chunker again`);
  }
}

/** How long a text is in the chunker's unit: for tokens, the named model's tokenizer, loaded from its stored files. */
async function lengthFunction(model: ModelRecord, config: ChunkerConfig, context: RuntimeContext | undefined): Promise<LengthFunction> {
  if (config.unit !== 'tokens') return UNITS[config.unit ?? 'characters']!;
  if (!context) throw new Error(`chunker "${model.name}": counting tokens needs a runtime context to fetch the tokenizer's files`);
  if (config.tokenizer_files === undefined) {
    throw new Error(
      `chunker "${model.name}": unit "tokens" needs the tokenizer files of model "${config.tokenizer}", which apply copies into config.tokenizer_files, and this chunker has none. ` +
        `On PostgreSQL (and PGlite) apply it again after model "${config.tokenizer}"; MongoDB's apply does not copy them yet, so count characters or words there`,
    );
  }
  return tokenizerLength(model.name, config.tokenizer!, config.tokenizer_files, context);
}

/** The placeholders of a format, replaced in one pass (a value holding "{x}" is not expanded again). */
function formatChunk(format: string, chunk: Chunk, row: Record<string, unknown>, model: string): string {
  return format.replace(/\{([^{}]+)\}/g, (_, name: string) => {
    if (name === 'text') return chunk.text;
    if (name === 'headings') return (chunk.headings ?? []).join(' > ');
    if (!(name in row)) throw new Error(`chunker "${model}": format names {${name}}, which is not a key column of the listener (keys: ${Object.keys(row).join(', ')})`);
    const value = row[name];
    return value === null || value === undefined ? '' : String(value);
  });
}

/** How many documents of a batch are read and extracted at once (files and URLs wait on I/O; PDFs take CPU). */
const DOCUMENTS_AT_ONCE = 4;

/**
 * Text into chunks, each with its character span (and, for Markdown, its
 * heading path): one list per input. Pure computation in the sidecar's
 * process, nothing stored but its config (and, counting tokens, the stored
 * tokenizer files of the model it names). With several key columns the first
 * is the text to split and the others are there for `format`. With source
 * "document" the first is a document, and spans are offsets in its extracted text.
 */
export class ChunkerRuntime implements ModelRuntime {
  readonly name = 'chunker';

  /** context is needed only to count tokens (the tokenizer's stored files). */
  async load(model: ModelRecord, context?: RuntimeContext): Promise<LoadedModel> {
    const config = checkChunkerConfig(model.name, model.config);
    const split = METHODS[config.method];
    const options = { size: config.size, overlap: config.overlap, length: await lengthFunction(model, config, context) };
    const chunk = (text: string, row: Record<string, unknown> | undefined): Chunk[] => {
      const chunks = split(text, options);
      if (config.format === undefined) return chunks;
      return chunks.map((chunk) => ({ ...chunk, text: formatChunk(config.format!, chunk, row ?? {}, model.name) }));
    };
    // A key column's value, or the first of a row's (a bytea value is a Uint8Array, which is an object too).
    const keyValue = (input: unknown): { value: unknown; row: Record<string, unknown> | undefined } => {
      const row = typeof input === 'object' && input !== null && !(input instanceof Uint8Array) ? (input as Record<string, unknown>) : undefined;
      return { value: row ? Object.values(row)[0] : input, row };
    };
    if (config.source === 'document') {
      const limit = pLimit(DOCUMENTS_AT_ONCE);
      return {
        async predict(inputs): Promise<Chunk[][]> {
          // One bad document fails the batch (the sidecar then runs each row alone,
          // so that it fails by itself): the documents still queued are not read.
          let failed = false;
          return Promise.all(
            inputs.map((input) =>
              limit(async () => {
                const { value, row } = keyValue(input);
                if (failed || value === null || value === undefined) return [];
                try {
                  return chunk(await extractText(model.name, value), row);
                } catch (error) {
                  failed = true;
                  throw error;
                }
              }),
            ),
          );
        },
      };
    }
    return {
      async predict(inputs): Promise<Chunk[][]> {
        return inputs.map((input) => {
          const { value: text, row } = keyValue(input);
          if (text === null || text === undefined || text === '') return [];
          if (typeof text !== 'string') {
            const what = text instanceof Uint8Array ? 'bytes (a bytea column): chunk documents with source "document"' : `a ${typeof text}`;
            throw new Error(`chunker "${model.name}" takes text; got ${what}`);
          }
          return chunk(text, row);
        });
      },
    };
  }
}
