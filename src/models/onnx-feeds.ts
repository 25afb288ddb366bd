import ort from 'onnxruntime-node';
import { tokenizeBatch, type WordTokenizerConfig } from './word-tokenizer.js';

export type TensorType = 'float32' | 'float64' | 'int64' | 'int32' | 'string' | 'bool';
type Feeds = Record<string, ort.Tensor>;

/**
 * How rows become ONNX inputs:
 * - with a tokenizer, rows are text: input_ids (and attention_mask) [rows, length];
 * - with `inputs` ({onnx input: [key columns]}), each input gets those columns of
 *   each row, concatenated ([rows, n]);
 * - else, when the graph has several inputs and rows are objects with those
 *   names (one key column per input, as skl2onnx exports), each input its column;
 * - else the graph's one input (or `input`) gets each row flattened: a number,
 *   an array, or several key columns, concatenated.
 */
export function feedBuilder(
  model: string,
  config: { input?: string; inputs?: Record<string, string[]>; tokenizer?: WordTokenizerConfig },
  inputNames: readonly string[],
  types: ReadonlyMap<string, TensorType>,
): (rows: readonly unknown[]) => Feeds {
  if (config.tokenizer) return textFeeds(model, config.tokenizer, inputNames);
  const tensor = (name: string, rows: unknown[][]) => toTensor(rows, types.get(name) ?? 'float32', model, name);
  if (config.inputs) {
    const mapping = config.inputs;
    for (const name of Object.keys(mapping)) {
      if (!inputNames.includes(name)) throw new Error(`ONNX model "${model}": config.inputs names "${name}", which the graph does not have (inputs: ${inputNames.join(', ')})`);
    }
    return (rows) =>
      Object.fromEntries(
        Object.entries(mapping).map(([name, columns]) => [
          name,
          tensor(name, rows.map((row) => columns.flatMap((column) => flatten(field(row, column, model), model)))),
        ]),
      );
  }
  return (rows) => {
    const first = rows[0];
    if (!config.input && inputNames.length > 1 && isPlainObject(first)) {
      return Object.fromEntries(
        inputNames.map((name) => {
          if (!(name in first)) throw new Error(`ONNX model "${model}" needs input "${name}"; the row has ${Object.keys(first).join(', ')}`);
          return [name, tensor(name, rows.map((row) => flatten((row as Record<string, unknown>)[name], model)))];
        }),
      );
    }
    const name = config.input ?? inputNames[0];
    if (!name || !inputNames.includes(name)) throw new Error(`ONNX model "${model}": no input named "${config.input}" (inputs: ${inputNames.join(', ')})`);
    if (!config.input && inputNames.length > 1) {
      throw new Error(`ONNX model "${model}" has inputs ${inputNames.join(', ')}: map key columns to them in config.inputs`);
    }
    return { [name]: tensor(name, rows.map((row) => flatten(row, model))) };
  };
}

function textFeeds(model: string, tokenizer: WordTokenizerConfig, inputNames: readonly string[]) {
  const idsName = inputNames.find((name) => name === 'input_ids') ?? inputNames[0];
  const maskName = inputNames.find((name) => name === 'attention_mask');
  if (!idsName) throw new Error(`ONNX model "${model}" has no inputs`);
  return (rows: readonly unknown[]): Feeds => {
    const texts = rows.map((row) => {
      if (typeof row !== 'string') throw new Error(`ONNX model "${model}" takes text; got a ${row === null ? 'NULL' : typeof row}`);
      return row;
    });
    const { ids, mask } = tokenizeBatch(texts, tokenizer);
    const dims = [texts.length, tokenizer.max_length];
    const feeds: Feeds = { [idsName]: new ort.Tensor('int64', ids, dims) };
    if (maskName) feeds[maskName] = new ort.Tensor('int64', mask, dims);
    return feeds;
  };
}

function field(row: unknown, column: string, model: string): unknown {
  if (isPlainObject(row)) {
    if (!(column in row)) throw new Error(`ONNX model "${model}": config.inputs names key column "${column}", which the row does not have`);
    return row[column];
  }
  return row; // one key column: the row is its value
}

function toTensor(rows: unknown[][], type: TensorType, model: string, input: string): ort.Tensor {
  const width = rows[0]?.length ?? 0;
  for (const row of rows) {
    if (row.length !== width) throw new Error(`ONNX model "${model}", input "${input}": rows have ${width} and ${row.length} values; all rows need the same number`);
  }
  const flat = rows.flat();
  const dims = [rows.length, width];
  const numbers = () =>
    flat.map((value) => {
      const number = typeof value === 'boolean' ? Number(value) : Number(value);
      if (typeof value === 'object' || Number.isNaN(number)) throw new Error(`ONNX model "${model}", input "${input}" takes numbers; got ${JSON.stringify(value)}`);
      return number;
    });
  switch (type) {
    case 'string':
      return new ort.Tensor('string', flat.map((value) => String(value)), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(numbers()), dims);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(numbers(), (v) => BigInt(Math.trunc(v))), dims);
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(numbers()), dims);
    case 'bool':
      return new ort.Tensor('bool', Uint8Array.from(numbers(), (v) => (v ? 1 : 0)), dims);
    default:
      return new ort.Tensor('float32', Float32Array.from(numbers()), dims);
  }
}

/** A row's values for one input, flat: numbers, arrays of them, or several key columns. */
function flatten(value: unknown, model: string): unknown[] {
  if (Array.isArray(value)) return value.flatMap((v) => flatten(v, model));
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number>);
  if (isPlainObject(value)) return Object.values(value).flatMap((v) => flatten(v, model));
  if (value === null || value === undefined) throw new Error(`ONNX model "${model}": a key value is NULL`);
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return [Number(value)];
  return [value];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}
