import { onnxModel } from '../../src/components/model.js';
import { wordEmbeddingModel } from '../../src/models/onnx-builder.js';

/**
 * The benchmarks' fast ONNX model: a word-embedding bag (32,768 words) into
 * `dim` dimensions, with the words tokenizer, deterministic from its seed.
 */
export function wordModel(name: string, options: { dim: number; seed: number }) {
  return onnxModel({
    name,
    file: wordEmbeddingModel({ vocabSize: 32768, dim: options.dim, seed: options.seed }),
    output: { type: 'vector', dim: options.dim },
    tokenizer: { type: 'words', vocab_size: 32768, max_length: 32 },
  });
}
