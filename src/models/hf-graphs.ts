import {
  encodeModel,
  FLOAT,
  floatTensor,
  INT64,
  int64Tensor,
  intAttribute,
  intsAttribute,
  node,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
  tensorInfo,
} from './onnx-proto.js';

/**
 * ONNX graphs with the inputs and outputs of Hugging Face exports (what optimum
 * writes to onnx/model.onnx), small enough to build in code: the tests and smoke
 * tests of the transformers runtime cannot download a model. They are no
 * transformer: an embedding lookup, a position embedding and one matrix, which
 * is enough for outputs that depend on the words and for weights a test can
 * reason about.
 */

export interface TextEncoderWeights {
  /** vocabulary × hidden, row-major. */
  words: Float32Array;
  /** max positions × hidden. */
  positions: Float32Array;
  /** 2 × hidden (BERT's segment A and B). */
  tokenTypes: Float32Array;
  vocabSize: number;
  hidden: number;
  maxPositions: number;
}

/**
 * input_ids, attention_mask, token_type_ids (int64 [batch, sequence]) →
 * last_hidden_state [batch, sequence, hidden] = (word + position + token type
 * embedding) · projection, zero at padding: a BertModel's interface.
 */
export function textEncoderGraph(weights: TextEncoderWeights, projection: Float32Array): Uint8Array {
  const { hidden } = weights;
  return encodeModel({
    nodes: [...embeddingNodes(), node('MatMul', ['embeddings', 'projection'], ['projected']), node('Mul', ['projected', 'mask_3d'], ['last_hidden_state'])],
    initializers: [...embeddingInitializers(weights), floatTensor('projection', [hidden, hidden], projection)],
    inputs: textInputs(),
    outputs: [tensorInfo('last_hidden_state', FLOAT, ['batch', 'sequence', hidden])],
  });
}

/**
 * The same inputs → logits [batch, labels] = (sum of the unmasked token
 * embeddings) · classifier: a BertForSequenceClassification's interface. A sum,
 * not a mean, so that one strong word decides the label however long the text.
 */
export function textClassifierGraph(weights: TextEncoderWeights, classifier: Float32Array, labels: number): Uint8Array {
  return encodeModel({
    nodes: [
      ...embeddingNodes(),
      node('Mul', ['embeddings', 'mask_3d'], ['masked']),
      node('ReduceSum', ['masked', 'sequence_axis'], ['pooled'], [intAttribute('keepdims', 0)]),
      node('MatMul', ['pooled', 'classifier'], ['logits']),
    ],
    initializers: [
      ...embeddingInitializers(weights),
      int64Tensor('sequence_axis', [1], [1]),
      floatTensor('classifier', [weights.hidden, labels], classifier),
    ],
    inputs: textInputs(),
    outputs: [tensorInfo('logits', FLOAT, ['batch', labels])],
  });
}

/**
 * input_ids, attention_mask → text_embeds [batch, dim] = (mean of the unmasked
 * word + position embeddings) · projection: a CLIPTextModelWithProjection's
 * interface (onnx/text_model.onnx beside onnx/vision_model.onnx).
 */
export function clipTextGraph(weights: TextEncoderWeights, projection: Float32Array): Uint8Array {
  const { hidden } = weights;
  return encodeModel({
    nodes: [
      ...embeddingNodes(false),
      node('Mul', ['embeddings', 'mask_3d'], ['masked']),
      node('ReduceSum', ['masked', 'sequence_axis'], ['summed'], [intAttribute('keepdims', 0)]),
      node('ReduceSum', ['mask_f', 'sequence_axis'], ['counts'], [intAttribute('keepdims', 1)]),
      node('Div', ['summed', 'counts'], ['pooled']),
      node('MatMul', ['pooled', 'projection'], ['text_embeds']),
    ],
    initializers: [
      ...embeddingInitializers(weights, false),
      int64Tensor('sequence_axis', [1], [1]),
      floatTensor('projection', [hidden, hidden], projection),
    ],
    inputs: textInputs(false),
    outputs: [tensorInfo('text_embeds', FLOAT, ['batch', hidden])],
  });
}

/**
 * pixel_values float [batch, 3, height, width] → image_embeds [batch, dim] =
 * (mean of each colour channel) · projection: a CLIPVisionModelWithProjection's
 * interface, that sees only an image's average colour.
 */
export function visionEncoderGraph(projection: Float32Array, dim: number): Uint8Array {
  return encodeModel({
    nodes: [
      node('ReduceMean', ['pixel_values'], ['colour'], [intsAttribute('axes', [2, 3]), intAttribute('keepdims', 0)]),
      node('MatMul', ['colour', 'projection'], ['image_embeds']),
    ],
    initializers: [floatTensor('projection', [3, dim], projection)],
    inputs: [tensorInfo('pixel_values', FLOAT, ['batch', 3, 'height', 'width'])],
    outputs: [tensorInfo('image_embeds', FLOAT, ['batch', dim])],
  });
}

/**
 * pixel_values float [batch, 3, height, width] → last_hidden_state [batch,
 * pixels, dim] = each pixel's colour · projection: a ViTModel's interface (one
 * vector per patch, here a patch is a pixel), which callers pool.
 */
export function patchEncoderGraph(projection: Float32Array, dim: number): Uint8Array {
  return encodeModel({
    nodes: [
      node('Reshape', ['pixel_values', 'channels_by_pixels'], ['flat']),
      node('Transpose', ['flat'], ['pixels'], [intsAttribute('perm', [0, 2, 1])]),
      node('MatMul', ['pixels', 'projection'], ['last_hidden_state']),
    ],
    initializers: [int64Tensor('channels_by_pixels', [3], [0, 3, -1]), floatTensor('projection', [3, dim], projection)],
    inputs: [tensorInfo('pixel_values', FLOAT, ['batch', 3, 'height', 'width'])],
    outputs: [tensorInfo('last_hidden_state', FLOAT, ['batch', 'pixels', dim])],
  });
}

/**
 * embeddings [batch, sequence, hidden] and mask_3d [batch, sequence, 1] from the
 * text inputs; token_type_ids only for BERT-style graphs (CLIP has none).
 */
function embeddingNodes(tokenTypes = true): OnnxNode[] {
  return [
    node('Gather', ['words', 'input_ids'], ['word_vectors'], [intAttribute('axis', 0)]),
    // Positions 0..sequence-1, from the runtime shape of input_ids.
    node('Shape', ['input_ids'], ['ids_shape']),
    node('Gather', ['ids_shape', 'one'], ['length'], [intAttribute('axis', 0)]),
    node('Range', ['zero', 'length', 'one'], ['position_ids']),
    node('Gather', ['positions', 'position_ids'], ['position_vectors'], [intAttribute('axis', 0)]),
    ...(tokenTypes
      ? [
          node('Gather', ['token_types', 'token_type_ids'], ['type_vectors'], [intAttribute('axis', 0)]),
          node('Add', ['word_vectors', 'position_vectors'], ['word_and_position']),
          node('Add', ['word_and_position', 'type_vectors'], ['embeddings']),
        ]
      : [node('Add', ['word_vectors', 'position_vectors'], ['embeddings'])]),
    node('Cast', ['attention_mask'], ['mask_f'], [intAttribute('to', FLOAT)]),
    node('Unsqueeze', ['mask_f', 'last_axis'], ['mask_3d']),
  ];
}

function embeddingInitializers(weights: TextEncoderWeights, tokenTypes = true): OnnxTensor[] {
  const { vocabSize, hidden, maxPositions } = weights;
  return [
    floatTensor('words', [vocabSize, hidden], weights.words),
    floatTensor('positions', [maxPositions, hidden], weights.positions),
    ...(tokenTypes ? [floatTensor('token_types', [2, hidden], weights.tokenTypes)] : []),
    int64Tensor('zero', [], [0]),
    int64Tensor('one', [], [1]),
    int64Tensor('last_axis', [1], [-1]),
  ];
}

function textInputs(tokenTypes = true): OnnxValueInfo[] {
  const names = tokenTypes ? ['input_ids', 'attention_mask', 'token_type_ids'] : ['input_ids', 'attention_mask'];
  return names.map((name) => tensorInfo(name, INT64, ['batch', 'sequence']));
}
