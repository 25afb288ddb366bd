import { readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { OutputSpec } from '../models/types.js';
import type { StoredModel } from './model.js';

interface CommonOptions {
  name: string;
  /** A Hugging Face-layout folder (config.json, tokenizer.json, onnx/model.onnx, ...), stored in the database. */
  path?: string;
  /** Or a hub id, downloaded by each sidecar; only where SUPERDUPER_ALLOW_REMOTE_MODELS=1. */
  modelId?: string;
  /** Vectors: 'mean' (default; over the attention mask) or 'cls' (the first token). */
  pooling?: 'mean' | 'cls';
  /** Vectors: scale to unit length (default true). */
  normalize?: boolean;
  /** Classification: 1 (default) gives {label, score}; 'all' adds {scores: {label: score}}. */
  topK?: 1 | 'all';
}

/**
 * task 'rerank': a cross-encoder's text-classification folder (such as
 * cross-encoder/ms-marco-MiniLM-L-6-v2 or BAAI/bge-reranker-base exported with
 * optimum), a reranker as every reranker here: each input
 * {"query": text, "documents": [text, ...]} gives an array of scores, one per
 * document in order, higher meaning more relevant; its output is jsonb.
 */
export type TransformersModelOptions = CommonOptions &
  (
    | { task: 'feature-extraction' | 'text-classification' | 'image-feature-extraction'; output: OutputSpec }
    | { task: 'rerank'; output?: { type: 'jsonb' } }
  );

/**
 * Weights of other frameworks, which transformers.js never reads: a folder
 * cloned from the hub often has them, and they would only fill the database.
 */
const UNUSED_WEIGHTS = /\.(safetensors|bin|h5|msgpack|ckpt|pt|pth|ot)$/;

/**
 * A Hugging Face-layout model run by transformers.js (runtime "transformers").
 * With `path`, every file of the folder is stored in the database when the model
 * is applied, so each sidecar rebuilds the folder from the database and needs
 * neither the original folder nor the network.
 *
 * @example
 * await db.apply(transformersModel({
 *   name: 'minilm', path: './models/all-MiniLM-L6-v2', task: 'feature-extraction',
 *   output: { type: 'vector', dim: 384 },
 * }));
 * await db.apply(transformersModel({ name: 'reranker', path: './models/ms-marco-MiniLM-L-6-v2', task: 'rerank' }));
 */
export function transformersModel(options: TransformersModelOptions): StoredModel {
  const { name, path, modelId } = options;
  if ((path === undefined) === (modelId === undefined)) {
    throw new Error(`transformers model "${name}": give either path (a local model folder) or modelId (a hub id)`);
  }
  const config: Record<string, unknown> = { task: options.task };
  if (options.pooling !== undefined) config.pooling = options.pooling;
  if (options.normalize !== undefined) config.normalize = options.normalize;
  if (options.topK !== undefined) config.top_k = options.topK;
  if (modelId !== undefined) config.model_id = modelId;
  return {
    kind: 'model',
    name,
    runtime: 'transformers',
    spec: { type: 'model', name, runtime: 'transformers', output: options.output ?? { type: 'jsonb' }, config },
    // Stored under config.files, keyed by path inside the folder.
    ...(path === undefined ? {} : { files: folderFiles(name, path) }),
  };
}

function folderFiles(model: string, folder: string): Record<string, () => Promise<Uint8Array>> {
  let entries: string[];
  try {
    if (!statSync(folder).isDirectory()) throw new Error('not a folder');
    entries = readdirSync(folder, { recursive: true, encoding: 'utf8' }).sort();
  } catch (error) {
    throw new Error(`transformers model "${model}": cannot read the model folder ${folder}: ${(error as Error).message}`, { cause: error });
  }
  const paths = entries.map((entry) => entry.split(sep).join('/'));
  // optimum-cli writes model.onnx next to config.json, transformers.js reads
  // onnx/model.onnx: a folder without onnx/ gets its ONNX files (and their
  // external data, model.onnx_data) moved there.
  const moveOnnx = !paths.some((path) => path.startsWith('onnx/'));
  const files: Record<string, () => Promise<Uint8Array>> = {};
  entries.forEach((entry, i) => {
    const path = paths[i]!;
    // Dot-files (.git, .gitattributes, .cache) are not part of the model.
    if (path.split('/').some((part) => part.startsWith('.')) || UNUSED_WEIGHTS.test(path)) return;
    if (!statSync(join(folder, entry)).isFile()) return;
    const stored = moveOnnx && !path.includes('/') && /\.onnx(_data|\.data)?$/.test(path) ? `onnx/${path}` : path;
    files[stored] = async () => new Uint8Array(await readFile(join(folder, entry)));
  });
  if (Object.keys(files).length === 0) throw new Error(`transformers model "${model}": the model folder ${folder} has no files`);
  return files;
}
