import { readFile } from 'node:fs/promises';
import type { FunctionModel } from '../models/function-runtime.js';
import { checkChunkerConfig } from '../models/chunker-runtime.js';
import type { OutputSpec } from '../models/types.js';

/** A model whose file is stored in the database (put_artifact) when it is applied. */
export interface StoredModel {
  readonly kind: 'model';
  readonly name: string;
  readonly runtime: string;
  /** The spec without "artifact"; apply() fills it with the stored file's hash. */
  readonly spec: Record<string, unknown>;
  readonly artifact?: () => Promise<Uint8Array>;
  /** Further files (a model folder), by path: stored as config.files = {path: SHA-256}. */
  readonly files?: Record<string, () => Promise<Uint8Array>>;
}

export type ModelComponent = FunctionModel | StoredModel;

export interface OnnxModelOptions {
  name: string;
  /** Path of the .onnx file, or its bytes. */
  file: string | Uint8Array;
  output: OutputSpec;
  /** ONNX input to feed (default: the graph's only input). */
  input?: string;
  /** Several ONNX inputs, each fed from key columns: {onnx input: [columns]}. */
  inputs?: Record<string, string[]>;
  /** ONNX output to store (default: the graph's first output). */
  outputName?: string;
  /** Store several ONNX outputs as one jsonb object: {field: onnx output}. */
  outputs?: Record<string, string>;
  /** For text inputs: the hashing word tokenizer (see models/word-tokenizer.ts). */
  tokenizer?: { type: 'words'; vocab_size: number; max_length: number };
  /** onnxruntime intra-op threads. */
  threads?: number;
}

/**
 * An ONNX model run by onnxruntime-node. The file's bytes are stored in the
 * database, so every sidecar, on any machine, loads the same model.
 */
export function onnxModel(options: OnnxModelOptions): StoredModel {
  const config: Record<string, unknown> = {};
  if (options.input) config.input = options.input;
  if (options.inputs) config.inputs = options.inputs;
  if (options.outputName) config.output = options.outputName;
  if (options.outputs) config.outputs = options.outputs;
  if (options.tokenizer) config.tokenizer = options.tokenizer;
  if (options.threads) config.threads = options.threads;
  const file = options.file;
  return {
    kind: 'model',
    name: options.name,
    runtime: 'onnx',
    spec: { type: 'model', name: options.name, runtime: 'onnx', output: options.output, config },
    artifact: async () => (typeof file === 'string' ? new Uint8Array(await readFile(file)) : file),
  };
}

export interface ChunkerModelOptions {
  name: string;
  /** "recursive" (paragraphs, lines, sentences, words) or "markdown" (sections at headings, each chunk with its heading path). */
  method: 'recursive' | 'markdown';
  /** The most a chunk holds, in `unit`s. */
  size: number;
  /** How much of a chunk's end the next one repeats (default 0). */
  overlap?: number;
  /** "characters" (default), "words", or "tokens" of the tokenizer of the model named by `tokenizer`. */
  unit?: 'characters' | 'words' | 'tokens';
  /**
   * unit "tokens": the name of a model whose stored folder has a tokenizer
   * (a transformersModel applied with `path`), usually the one that embeds the
   * chunks, so that size is what that model counts. Apply that model first, or
   * earlier in the same apply.
   */
  tokenizer?: string;
  /** What each chunk's text becomes, e.g. "{title}\n{headings}\n{text}" (see ChunkerConfig). */
  format?: string;
  /**
   * What the first key column holds: "text" (default), the text to split, or
   * "document": a document's bytes (a bytea column), or text naming a file or
   * URL where the sidecars' operator allows it (SUPERDUPER_DOCUMENT_DIR,
   * SUPERDUPER_ALLOW_DOCUMENT_URLS), whose text (PDF, DOCX, HTML, Markdown,
   * plain text) is extracted and split; spans then count in the extracted text.
   */
  source?: 'text' | 'document';
  /**
   * true (default): one output row per chunk (text, with _position, _start, _end
   * and _headings); false: one jsonb list of chunks per row.
   */
  flatten?: boolean;
}

/**
 * A chunker: text into chunks ({text, start, end, headings}), one output row
 * per chunk (or, with flatten: false, one jsonb list per row). Its config is
 * checked here, and again by the sidecar that loads it.
 */
export function chunkerModel(options: ChunkerModelOptions): StoredModel {
  const config: Record<string, unknown> = { method: options.method, size: options.size };
  if (options.overlap !== undefined) config.overlap = options.overlap;
  if (options.unit !== undefined) config.unit = options.unit;
  if (options.tokenizer !== undefined) config.tokenizer = options.tokenizer;
  if (options.format !== undefined) config.format = options.format;
  // Only when given: a spec without it keeps its hash, so existing chunkers are not recomputed.
  if (options.source !== undefined) config.source = options.source;
  checkChunkerConfig(options.name, config);
  const output = options.flatten === false ? { type: 'jsonb' } : { type: 'text', flatten: true };
  return { kind: 'model', name: options.name, runtime: 'chunker', spec: { type: 'model', name: options.name, runtime: 'chunker', output, config } };
}
