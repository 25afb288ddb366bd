import ort from 'onnxruntime-node';
import type { LoadedModel, ModelRecord, ModelRuntime, RuntimeContext } from './types.js';
import { tokenizeBatch, type WordTokenizerConfig } from './word-tokenizer.js';

/**
 * config of an ONNX model (all optional):
 *   input      ONNX input name (default: the graph's only input)
 *   output     ONNX output name to store (default: the graph's first output)
 *   tokenizer  {"type": "words", "vocab_size": N, "max_length": L} for text inputs
 *   threads    intra-op threads (default: onnxruntime's choice)
 *
 * Inputs per row: a number, an array of numbers, or (several key columns) an
 * object whose values are those; they are concatenated into one float row. When
 * the graph has several inputs and the row is an object with those names, each
 * input gets its own column. With a tokenizer, rows are text.
 */
interface OnnxConfig {
  input?: string;
  output?: string;
  tokenizer?: WordTokenizerConfig;
  threads?: number;
}

type TensorType = 'float32' | 'float64' | 'int64' | 'int32' | 'string' | 'bool';

export class OnnxRuntime implements ModelRuntime {
  readonly name = 'onnx';

  async load(model: ModelRecord, context: RuntimeContext): Promise<LoadedModel> {
    if (!model.artifact) throw new Error(`ONNX model "${model.name}" has no artifact (the .onnx file)`);
    const bytes = await context.fetchArtifact(model.artifact);
    const config = model.config as OnnxConfig;
    const session = await ort.InferenceSession.create(bytes, {
      ...(config.threads ? { intraOpNumThreads: config.threads } : {}),
      graphOptimizationLevel: 'all',
      // onnxruntime's threads spin after each run waiting for more work, taking
      // CPU from the database that the sidecar writes to next.
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    });
    const outputName = config.output ?? session.outputNames[0];
    if (!outputName || !session.outputNames.includes(outputName)) {
      throw new Error(`ONNX model "${model.name}": no output named "${config.output}" (outputs: ${session.outputNames.join(', ')})`);
    }
    const inputTypes = new Map<string, TensorType>();
    session.inputMetadata.forEach((meta) => {
      inputTypes.set(meta.name, meta.isTensor ? (meta.type as TensorType) : 'float32');
    });
    const feedsFor = config.tokenizer
      ? textFeeds(model.name, config.tokenizer, session.inputNames)
      : numericFeeds(model.name, config.input, session.inputNames, inputTypes);

    return {
      async predict(inputs) {
        const results = await session.run(feedsFor(inputs), [outputName]);
        return splitRows(results[outputName] as ort.Tensor, inputs.length, model.name);
      },
      async close() {
        await session.release();
      },
    };
  }
}

function textFeeds(model: string, tokenizer: WordTokenizerConfig, inputNames: readonly string[]) {
  const idsName = inputNames.find((name) => name === 'input_ids') ?? inputNames[0];
  const maskName = inputNames.find((name) => name === 'attention_mask');
  if (!idsName) throw new Error(`ONNX model "${model}" has no inputs`);
  return (inputs: readonly unknown[]): Record<string, ort.Tensor> => {
    const texts = inputs.map((input) => {
      if (typeof input !== 'string') throw new Error(`ONNX model "${model}" takes text; got a ${typeof input}`);
      return input;
    });
    const { ids, mask } = tokenizeBatch(texts, tokenizer);
    const dims = [texts.length, tokenizer.max_length];
    const feeds: Record<string, ort.Tensor> = { [idsName]: new ort.Tensor('int64', ids, dims) };
    if (maskName) feeds[maskName] = new ort.Tensor('int64', mask, dims);
    return feeds;
  };
}

function numericFeeds(model: string, input: string | undefined, inputNames: readonly string[], types: Map<string, TensorType>) {
  return (inputs: readonly unknown[]): Record<string, ort.Tensor> => {
    const first = inputs[0];
    // One ONNX input per key column (as skl2onnx exports several columns).
    if (!input && inputNames.length > 1 && isPlainObject(first)) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of inputNames) {
        if (!(name in first)) throw new Error(`ONNX model "${model}" needs input "${name}"; the row has ${Object.keys(first).join(', ')}`);
        feeds[name] = toTensor(inputs.map((row) => flatten((row as Record<string, unknown>)[name], model)), types.get(name) ?? 'float32', model);
      }
      return feeds;
    }
    const name = input ?? inputNames[0];
    if (!name || !inputNames.includes(name)) {
      throw new Error(`ONNX model "${model}": no input named "${input}" (inputs: ${inputNames.join(', ')})`);
    }
    if (!input && inputNames.length > 1) {
      throw new Error(`ONNX model "${model}" has inputs ${inputNames.join(', ')}: name the one to feed in config.input, or key the listener by those names`);
    }
    return { [name]: toTensor(inputs.map((row) => flatten(row, model)), types.get(name) ?? 'float32', model) };
  };
}

function toTensor(rows: number[][], type: TensorType, model: string): ort.Tensor {
  const width = rows[0]?.length ?? 0;
  rows.forEach((row) => {
    if (row.length !== width) throw new Error(`ONNX model "${model}": rows have ${width} and ${row.length} features; all rows need the same number`);
  });
  const flat = rows.flat();
  const dims = [rows.length, width];
  switch (type) {
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(flat), dims);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(flat, (v) => BigInt(Math.trunc(v))), dims);
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(flat), dims);
    default:
      return new ort.Tensor('float32', Float32Array.from(flat), dims);
  }
}

function flatten(value: unknown, model: string): number[] {
  if (typeof value === 'number') return [value];
  if (typeof value === 'boolean') return [value ? 1 : 0];
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return [Number(value)];
  if (Array.isArray(value)) return value.flatMap((v) => flatten(v, model));
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number>, Number);
  if (isPlainObject(value)) return Object.values(value).flatMap((v) => flatten(v, model));
  throw new Error(`ONNX model "${model}" takes numbers; got ${value === null ? 'NULL' : `a ${typeof value}`}`);
}

/** One output per row: a vector when the tensor is [rows, d], a scalar when it is [rows] or [rows, 1]. */
function splitRows(tensor: ort.Tensor, rows: number, model: string): unknown[] {
  const dims = tensor.dims;
  if (dims[0] !== rows) throw new Error(`ONNX model "${model}" returned ${dims[0]} rows for ${rows} inputs`);
  const width = dims.slice(1).reduce((a, b) => a * b, 1);
  const data = tensor.data as ArrayLike<unknown>;
  const scalar = dims.length === 1 || (dims.length === 2 && dims[1] === 1);
  const out: unknown[] = [];
  if (!scalar && data instanceof Float32Array) {
    // Views into the output tensor, no copy: the write encodes them directly.
    for (let row = 0; row < rows; row++) out.push(data.subarray(row * width, (row + 1) * width));
    return out;
  }
  for (let row = 0; row < rows; row++) {
    if (scalar) {
      out.push(plain(data[row]));
    } else {
      const slice: unknown[] = new Array(width);
      for (let i = 0; i < width; i++) slice[i] = plain(data[row * width + i]);
      out.push(slice);
    }
  }
  return out;
}

function plain(value: unknown): unknown {
  return typeof value === 'bigint' ? Number(value) : value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}
