import { randomMatrix } from '../../src/models/onnx-builder.js';
import {
  encodeModel,
  FLOAT,
  floatTensor,
  INT64,
  int64Tensor,
  intAttribute,
  intsAttribute,
  node,
  type OnnxAttribute,
  type OnnxNode,
  type OnnxTensor,
  tensorInfo,
} from '../../src/models/onnx-proto.js';

/**
 * A transformer sentence encoder with random weights, shaped and sized like
 * all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, feed-forward 1536) and
 * pooled the sentence-transformers way (masked mean, L2 normalised), so the
 * benchmark's model costs what a real small embedder costs per row. The real
 * weights cannot be downloaded here; the arithmetic is the same.
 */
export interface EncoderShape {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  feedForward: number;
}

export const MINILM_SHAPE: EncoderShape = { vocab: 8192, hidden: 384, layers: 6, heads: 12, feedForward: 1536 };

export function encoderGraph(shape: EncoderShape = MINILM_SHAPE, seed = 7): Uint8Array {
  const { vocab, hidden, layers, heads, feedForward } = shape;
  const headSize = hidden / heads;
  const nodes: OnnxNode[] = [];
  const initializers: OnnxTensor[] = [];
  let seedCounter = seed;
  const weight = (name: string, dims: number[], scale = 0.05) => {
    const size = dims.reduce((a, b) => a * b, 1);
    const values = randomMatrix(size, seedCounter++).map((v) => v * scale);
    initializers.push(floatTensor(name, dims, values));
    return name;
  };
  const constant = (name: string, dims: number[], values: number[], type = FLOAT) => {
    initializers.push(
      type === FLOAT ? floatTensor(name, dims, Float32Array.from(values)) : int64Tensor(name, dims, values),
    );
    return name;
  };
  const add = (op: string, inputs: string[], output: string, attributes: OnnxAttribute[] = []) => {
    nodes.push(node(op, inputs, [output], attributes));
    return output;
  };

  constant('split_heads', [4], [0, 0, heads, headSize], INT64);
  constant('merge_heads', [3], [0, 0, hidden], INT64);
  constant('scale', [1], [1 / Math.sqrt(headSize)]);
  constant('one', [1], [1]);
  constant('minus_big', [1], [-10000]);
  constant('axes_12', [2], [1, 2], INT64);
  constant('last_axis', [1], [-1], INT64);
  constant('token_axis', [1], [1], INT64);
  const ones = Array.from({ length: hidden }, () => 1);
  const zeros = Array.from({ length: hidden }, () => 0);

  let x = add('Gather', [weight('word_embeddings', [vocab, hidden], 0.5), 'input_ids'], 'embedded', [intAttribute('axis', 0)]);
  const mask = add('Cast', ['attention_mask'], 'mask_f', [intAttribute('to', FLOAT)]);
  // Padding gets -10000 before the softmax: [batch, 1, 1, sequence].
  const bias = add('Mul', [add('Sub', ['one', mask], 'mask_inverse'), 'minus_big'], 'mask_bias_2d');
  const attentionBias = add('Unsqueeze', [bias, 'axes_12'], 'mask_bias');

  for (let l = 0; l < layers; l++) {
    const p = `l${l}_`;
    const heads4 = (name: string, perm: number[]) =>
      add('Transpose', [add('Reshape', [add('MatMul', [x, weight(`${p}w${name}`, [hidden, hidden])], `${p}${name}`), 'split_heads'], `${p}${name}_4d`)], `${p}${name}_t`, [
        intsAttribute('perm', perm),
      ]);
    const q = heads4('q', [0, 2, 1, 3]);
    const k = heads4('k', [0, 2, 3, 1]);
    const v = heads4('v', [0, 2, 1, 3]);
    const scores = add('Add', [add('Mul', [add('MatMul', [q, k], `${p}qk`), 'scale'], `${p}qk_scaled`), attentionBias], `${p}scores`);
    const probabilities = add('Softmax', [scores], `${p}probabilities`, [intAttribute('axis', -1)]);
    const context = add('Reshape', [add('Transpose', [add('MatMul', [probabilities, v], `${p}context_4d`)], `${p}context_t`, [intsAttribute('perm', [0, 2, 1, 3])]), 'merge_heads'], `${p}context`);
    const attended = add('Add', [x, add('MatMul', [context, weight(`${p}wo`, [hidden, hidden])], `${p}attention_out`)], `${p}residual_1`);
    const normed = add('LayerNormalization', [attended, constant(`${p}ln1_g`, [hidden], ones), constant(`${p}ln1_b`, [hidden], zeros)], `${p}ln1`, [intAttribute('axis', -1)]);
    const up = add('Relu', [add('MatMul', [normed, weight(`${p}w1`, [hidden, feedForward])], `${p}ff_up`)], `${p}ff_act`);
    const down = add('Add', [normed, add('MatMul', [up, weight(`${p}w2`, [feedForward, hidden])], `${p}ff_down`)], `${p}residual_2`);
    x = add('LayerNormalization', [down, constant(`${p}ln2_g`, [hidden], ones), constant(`${p}ln2_b`, [hidden], zeros)], `${p}ln2`, [intAttribute('axis', -1)]);
  }

  // sentence-transformers mean pooling over the unmasked tokens, then L2 normalisation.
  const mask3d = add('Unsqueeze', [mask, 'last_axis'], 'mask_3d');
  const summed = add('ReduceSum', [add('Mul', [x, mask3d], 'masked'), 'token_axis'], 'summed', [intAttribute('keepdims', 0)]);
  const counts = add('Max', [add('ReduceSum', [mask, 'token_axis'], 'counts', [intAttribute('keepdims', 1)]), 'one'], 'safe_counts');
  add('LpNormalization', [add('Div', [summed, counts], 'mean')], 'embedding', [intAttribute('axis', -1), intAttribute('p', 2)]);

  return encodeModel(
    {
      nodes,
      initializers,
      inputs: [tensorInfo('input_ids', INT64, ['batch', 'sequence']), tensorInfo('attention_mask', INT64, ['batch', 'sequence'])],
      outputs: [tensorInfo('embedding', FLOAT, ['batch', hidden])],
    },
    { opsets: { '': 17 }, producer: 'superduper bench', name: 'encoder' },
  );
}
