import { configuration } from '../config.js';
import { join } from 'node:path';
import { clipTextEmbedder } from './clip-text.js';
import { crossEncoder } from './cross-encoder.js';
import { imageBytesFor } from './image-source.js';
import { materializeFolder, modelCacheRoot } from './model-folder.js';
import type { LoadedModel, ModelRecord, ModelRuntime, RuntimeContext } from './types.js';

type Transformers = typeof import('@huggingface/transformers');
type Tensor = import('@huggingface/transformers').Tensor;

const TASKS = ['feature-extraction', 'text-classification', 'image-feature-extraction', 'rerank'] as const;
type Task = (typeof TASKS)[number];

/** Files a folder must have for each task, besides its ONNX graph(s) under onnx/. */
const REQUIRED_FILES: Record<Task, string[]> = {
  'feature-extraction': ['config.json', 'tokenizer.json', 'tokenizer_config.json'],
  'text-classification': ['config.json', 'tokenizer.json', 'tokenizer_config.json'],
  'image-feature-extraction': ['config.json', 'preprocessor_config.json'],
  rerank: ['config.json', 'tokenizer.json', 'tokenizer_config.json'],
};

/**
 * config of a transformers model:
 *   task       'feature-extraction' | 'text-classification' | 'image-feature-extraction'
 *              | 'rerank' (a cross-encoder's text-classification folder; cross-encoder.ts)
 *   pooling    'mean' (default; masked mean, as sentence-transformers) | 'cls'
 *              (a CLIP folder's text tower gives text_embeds, pooled already)
 *   normalize  scale vectors to unit length (default true)
 *   top_k      text-classification: 1 (default, the best label) | 'all' (every label's score too)
 *   files      {relative path: SHA-256}: the model folder, stored in the database
 *   model_id   or a Hugging Face hub id, only where SUPERDUPER_ALLOW_REMOTE_MODELS=1
 */
interface Settings {
  task: Task;
  pooling: 'mean' | 'cls';
  normalize: boolean;
  allLabels: boolean;
  files?: Record<string, string>;
  modelId?: string;
}

/** A pipeline as this runtime calls it: the task's options, a Tensor or label scores back. */
type Pipeline = ((inputs: unknown[], options: Record<string, unknown>) => Promise<unknown>) & { dispose(): Promise<void> };

/**
 * Hugging Face-layout models (an optimum export: config.json, tokenizer.json,
 * onnx/model.onnx, ...) run through @huggingface/transformers on
 * onnxruntime-node. The folder's files are stored in the database and written
 * to a local cache folder named by the model's spec hash, so every sidecar runs
 * the same bytes and none needs the network.
 */
export class TransformersRuntime implements ModelRuntime {
  readonly name = 'transformers';

  async load(model: ModelRecord, context: RuntimeContext): Promise<LoadedModel> {
    const settings = parseSettings(model);
    const remote = remoteModelsAllowed();
    if (settings.modelId !== undefined && !remote) {
      throw new Error(
        `transformers model "${model.name}" names the hub model "${settings.modelId}", but remote models are off in this sidecar. ` +
          `Store the model folder in the database instead (transformersModel({ name: '${model.name}', path: '<folder with config.json, tokenizer.json, onnx/model.onnx>', ... })), ` +
          'or set SUPERDUPER_ALLOW_REMOTE_MODELS=1 to let sidecars download from the Hugging Face hub.',
      );
    }
    // Imported here, not at the top: it costs about 270 ms and 45 MB, which a
    // sidecar without transformers models should not pay.
    const transformers: Transformers = await import('@huggingface/transformers');
    const root = modelCacheRoot();
    // transformers.js reads these from one process-wide object. They come from
    // process-wide settings, so every load sets the same values.
    transformers.env.allowRemoteModels = remote;
    transformers.env.cacheDir = join(root, 'hub');
    // A stored folder is passed by absolute path rather than as a name under
    // env.localModelPath: a path is never taken for a hub id, so a missing file
    // fails here instead of turning into a download.
    const source = settings.files
      ? await materializeFolder(model.name, join(root, model.spec_hash), settings.files, context)
      : settings.modelId!;

    const options = {
      local_files_only: settings.files !== undefined,
      cache_dir: transformers.env.cacheDir,
      // onnxruntime's threads spin after each run waiting for more work,
      // taking CPU from the database that the sidecar writes to next.
      session_options: { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } },
    };
    let pipe: Pipeline;
    try {
      if (settings.task === 'rerank') {
        const score = await crossEncoder(transformers, model.name, source, options);
        return { predict: score, close: () => score.dispose() };
      }
      const clipText = settings.task === 'feature-extraction' && (await transformers.AutoConfig.from_pretrained(source, options)).model_type === 'clip';
      pipe = (clipText ? await clipTextEmbedder(transformers, source, options) : await transformers.pipeline(settings.task, source, options)) as unknown as Pipeline;
    } catch (error) {
      const where = settings.files ? `its stored files (written to ${source})` : `the hub model "${source}"`;
      throw new Error(`transformers model "${model.name}" could not be loaded from ${where}: ${(error as Error).message}`, { cause: error });
    }

    const predict = predictor(model.name, settings, pipe, transformers);
    return {
      predict,
      close: () => pipe.dispose(),
    };
  }
}

function remoteModelsAllowed(): boolean {
  return configuration().allowRemoteModels;
}

function parseSettings(model: ModelRecord): Settings {
  const config = model.config;
  const fail = (message: string): never => {
    throw new Error(`transformers model "${model.name}": ${message}`);
  };
  const task = config.task as Task;
  if (!TASKS.includes(task)) fail(`unknown task ${JSON.stringify(config.task)}; use one of ${TASKS.join(', ')}`);
  const pooling = config.pooling ?? 'mean';
  if (pooling !== 'mean' && pooling !== 'cls') fail(`pooling must be "mean" or "cls"; got ${JSON.stringify(pooling)}`);
  const normalize = config.normalize ?? true;
  if (typeof normalize !== 'boolean') fail(`normalize must be true or false; got ${JSON.stringify(normalize)}`);
  const topK = config.top_k ?? 1;
  if (topK !== 1 && topK !== 'all') fail(`top_k must be 1 or "all"; got ${JSON.stringify(topK)}`);

  // The contract of every reranker (rerank-input.ts): one jsonb array of scores per input.
  if (task === 'rerank' && model.output.type !== 'jsonb') {
    fail(`a reranker's output is {"type": "jsonb"} (an array of scores, one per document); got ${JSON.stringify(model.output)}`);
  }
  const base = { task, pooling: pooling as Settings['pooling'], normalize: normalize as boolean, allLabels: topK === 'all' };

  const { files, model_id: modelId } = config;
  if (files !== undefined && modelId !== undefined) fail('give either files (a stored folder) or model_id (a hub model), not both');
  if (modelId !== undefined) {
    if (typeof modelId !== 'string' || modelId === '') fail(`model_id must be a hub id such as "Xenova/all-MiniLM-L6-v2"; got ${JSON.stringify(modelId)}`);
    return { ...base, modelId: modelId as string };
  }
  if (typeof files !== 'object' || files === null || Array.isArray(files)) {
    return fail('has no files; apply it with transformersModel({ name, path: <model folder>, task, output }) so that the folder is stored in the database');
  }
  const paths = Object.keys(files);
  const missing = REQUIRED_FILES[task].filter((path) => !paths.includes(path));
  if (!paths.some((path) => path.startsWith('onnx/') && path.endsWith('.onnx'))) missing.push('onnx/<name>.onnx');
  if (missing.length > 0) {
    fail(
      `the stored folder lacks ${missing.join(', ')} (it has ${paths.join(', ') || 'no files'}); a ${task} model needs them. ` +
        'Export the model with optimum (optimum-cli export onnx --model <hub id> <folder>) and apply the whole folder.',
    );
  }
  return { ...base, files: files as Record<string, string> };
}

function predictor(model: string, settings: Settings, pipe: Pipeline, transformers: Transformers): LoadedModel['predict'] {
  switch (settings.task) {
    case 'rerank':
      // Loaded without a pipeline (see load): the text-classification pipeline takes no pairs.
      throw new Error(`transformers model "${model}": a reranker has no pipeline`);
    case 'feature-extraction':
      // Pooled (mean over the attention mask, or the first token), then L2: what sentence-transformers does.
      return async (inputs) => rows(model, (await pipe(texts(model, inputs), { pooling: settings.pooling, normalize: settings.normalize })) as Tensor);
    case 'text-classification':
      return async (inputs) => {
        // top_k null: every label, best first, per input.
        const results = (await pipe(texts(model, inputs), { top_k: settings.allLabels ? null : 1 })) as Array<Label | Label[]>;
        return results.map((result) =>
          Array.isArray(result) ? { ...result[0]!, scores: Object.fromEntries(result.map(({ label, score }) => [label, score])) } : result,
        );
      };
    case 'image-feature-extraction':
      return async (inputs) => {
        const images = await Promise.all(inputs.map((input) => decodeImage(model, input, transformers)));
        let output = (await pipe(images, {})) as Tensor;
        // A ViT-style model gives one vector per patch: pool them as for tokens.
        if (output.dims.length === 3) output = settings.pooling === 'cls' ? output.slice(null, 0) : output.mean(1);
        return rows(model, settings.normalize ? output.normalize(2, -1) : output);
      };
  }
}

interface Label {
  label: string;
  score: number;
}

function texts(model: string, inputs: readonly unknown[]): string[] {
  return inputs.map((input) => {
    if (typeof input !== 'string') {
      throw new Error(`transformers model "${model}" takes text; got ${Buffer.isBuffer(input) ? 'bytes' : `a ${typeof input}`} (key the listener by one text column)`);
    }
    return input;
  });
}

/**
 * Bytes (a bytea column arrives as a Buffer), or text naming a file or URL where
 * the sidecar's operator allows it (image-source.ts). Never a string handed to
 * transformers.js, which would open whatever path or URL a row names.
 */
async function decodeImage(model: string, input: unknown, transformers: Transformers) {
  const bytes = typeof input === 'string' ? await imageBytesFor(model, input) : input;
  if (!(bytes instanceof Uint8Array)) {
    throw new Error(`transformers model "${model}" takes images as bytes (a bytea column) or, where allowed, a file path or URL; got a ${typeof input}`);
  }
  try {
    return await transformers.RawImage.fromBlob(new Blob([bytes]));
  } catch (error) {
    throw new Error(`transformers model "${model}": the bytes are not an image it can decode (PNG, JPEG, WebP, ...): ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** One number[] per row of a [rows, dim] tensor. */
function rows(model: string, tensor: Tensor): number[][] {
  if (tensor.dims.length !== 2) {
    throw new Error(`transformers model "${model}" gave vectors of shape [${tensor.dims.join(', ')}]; a vector per input needs [inputs, dim] (check pooling)`);
  }
  const [count, dim] = tensor.dims as [number, number];
  const data = tensor.data as Float32Array;
  return Array.from({ length: count }, (_, row) => Array.from(data.subarray(row * dim, (row + 1) * dim)));
}
