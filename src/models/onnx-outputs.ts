import type ort from 'onnxruntime-node';
import type { ZipMapOutput } from './onnx-graph.js';

/**
 * One value per row from an output tensor: a vector when it is [rows, d] (a
 * view into the tensor for float32, no copy), a scalar when [rows] or [rows, 1];
 * a ZipMap output becomes {class label: probability} per row.
 */
export function splitRows(tensor: ort.Tensor, rows: number, model: string, zipMap?: ZipMapOutput): unknown[] {
  const dims = tensor.dims;
  if (dims[0] !== rows) throw new Error(`ONNX model "${model}" returned ${dims[0]} rows for ${rows} inputs`);
  const width = dims.slice(1).reduce((a, b) => a * b, 1);
  const data = tensor.data as ArrayLike<unknown>;
  const out: unknown[] = [];
  if (zipMap) {
    for (let row = 0; row < rows; row++) {
      out.push(Object.fromEntries(zipMap.labels.map((label, i) => [String(label), plain(data[row * width + i])])));
    }
    return out;
  }
  const scalar = dims.length === 1 || (dims.length === 2 && dims[1] === 1);
  if (!scalar && data instanceof Float32Array) {
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
