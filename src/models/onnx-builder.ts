import { encodeModel, FLOAT, floatTensor, INT64, int64Tensor, intAttribute, node, tensorInfo } from './onnx-proto.js';

/**
 * Builds small ONNX graphs in code: linear layers for tabular features, and
 * word-embedding averages for text (the shape of a static sentence embedder).
 * Used to compile offline word vectors into a model, and by the tests and
 * benchmarks, which cannot download models.
 */

export interface LinearModelOptions {
  inputDim: number;
  outputDim: number;
  /** inputDim × outputDim weights, row-major; default: seeded pseudo-random. */
  weights?: Float32Array;
  seed?: number;
  inputName?: string;
  outputName?: string;
}

/** Y = X · W, X float [batch, inputDim]. */
export function linearModel(options: LinearModelOptions): Uint8Array {
  const { inputDim, outputDim } = options;
  const weights = options.weights ?? randomMatrix(inputDim * outputDim, options.seed ?? 1);
  const input = options.inputName ?? 'features';
  const output = options.outputName ?? 'output';
  return encodeModel({
    nodes: [node('MatMul', [input, 'W'], [output])],
    initializers: [floatTensor('W', [inputDim, outputDim], weights)],
    inputs: [tensorInfo(input, FLOAT, ['batch', inputDim])],
    outputs: [tensorInfo(output, FLOAT, ['batch', outputDim])],
  });
}

export interface WordEmbeddingModelOptions {
  vocabSize: number;
  dim: number;
  /** vocabSize × dim word vectors, row-major (row 0 is padding); default: seeded pseudo-random. */
  embeddings?: Float32Array;
  seed?: number;
  /** Scale the averaged vector to unit length (for cosine similarity). Default true. */
  normalize?: boolean;
}

/**
 * input_ids, attention_mask (int64 [batch, length]) → mean of the word vectors
 * of the unmasked tokens → optionally L2-normalized: a [batch, dim] embedding.
 */
export function wordEmbeddingModel(options: WordEmbeddingModelOptions): Uint8Array {
  const { vocabSize, dim } = options;
  const embeddings = options.embeddings ?? randomMatrix(vocabSize * dim, options.seed ?? 1);
  if (embeddings.length !== vocabSize * dim) throw new Error(`embeddings must hold ${vocabSize} × ${dim} values`);
  const normalize = options.normalize ?? true;
  const nodes = [
    node('Gather', ['E', 'input_ids'], ['vectors'], [intAttribute('axis', 0)]),
    node('Cast', ['attention_mask'], ['mask_f'], [intAttribute('to', FLOAT)]),
    node('Unsqueeze', ['mask_f', 'last_axis'], ['mask_3d']),
    node('Mul', ['vectors', 'mask_3d'], ['masked']),
    node('ReduceSum', ['masked', 'token_axis'], ['summed'], [intAttribute('keepdims', 0)]),
    node('ReduceSum', ['mask_f', 'token_axis'], ['counts'], [intAttribute('keepdims', 1)]),
    node('Max', ['counts', 'one'], ['safe_counts']),
    node('Div', ['summed', 'safe_counts'], [normalize ? 'mean' : 'embedding']),
  ];
  if (normalize) nodes.push(node('LpNormalization', ['mean'], ['embedding'], [intAttribute('axis', -1), intAttribute('p', 2)]));
  return encodeModel({
    nodes,
    initializers: [
      floatTensor('E', [vocabSize, dim], embeddings),
      int64Tensor('last_axis', [1], [-1]),
      int64Tensor('token_axis', [1], [1]),
      floatTensor('one', [1], new Float32Array([1])),
    ],
    inputs: [
      tensorInfo('input_ids', INT64, ['batch', 'length']),
      tensorInfo('attention_mask', INT64, ['batch', 'length']),
    ],
    outputs: [tensorInfo('embedding', FLOAT, ['batch', dim])],
  });
}

/** Deterministic values in [-1, 1) (mulberry32), so tests can recompute them. */
export function randomMatrix(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let state = seed >>> 0;
  for (let i = 0; i < size; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}
