import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { clipTextGraph, patchEncoderGraph, textClassifierGraph, textEncoderGraph, visionEncoderGraph, type TextEncoderWeights } from './hf-graphs.js';
import { randomMatrix } from './onnx-builder.js';

/**
 * Writes tiny models in the Hugging Face folder layout (config.json,
 * tokenizer.json, tokenizer_config.json, preprocessor_config.json,
 * onnx/*.onnx) that @huggingface/transformers loads with no network: for tests
 * and smoke tests of a deployment, where no model can be downloaded.
 *
 * The weights are seeded and built so that a test can predict the outcome:
 *  - dimensions 0..2 hold colour, in the space a CLIP processor maps pixels to
 *    (channel 0 → -1, 255 → +1): "red" is (1, -1, -1), a red image too, so the
 *    text and vision towers of the CLIP-style model embed into one space;
 *  - dimension 3 holds sentiment: +1 for positive words, -1 for negative words,
 *    and the classifier reads only it ("great" → positive, "awful" → negative);
 *  - the other dimensions are seeded noise, so every word has its own vector.
 */

const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const TINY_POSITIVE_WORDS = ['good', 'great', 'excellent', 'happy', 'love', 'wonderful'];
export const TINY_NEGATIVE_WORDS = ['bad', 'terrible', 'awful', 'sad', 'hate', 'boring'];
export const TINY_COLOURS: Record<string, [number, number, number]> = {
  red: [255, 0, 0],
  green: [0, 255, 0],
  blue: [0, 0, 255],
  white: [255, 255, 255],
  black: [0, 0, 0],
  yellow: [255, 255, 0],
};
const NEUTRAL_WORDS = [
  'the', 'a', 'an', 'is', 'are', 'was', 'this', 'that', 'it', 'of', 'and', 'but', 'not', 'very', 'i', 'you',
  'movie', 'film', 'book', 'story', 'day', 'picture', 'photo', 'square', 'circle', 'cat', 'dog', 'car', 'house',
  // WordPiece continuations, so that "movies" is movie + ##s.
  '##s', '##ing', '##ed',
];

/** Every token, by id: the special tokens first, so [PAD] is 0 as in BERT. */
export const TINY_VOCABULARY: readonly string[] = [
  ...SPECIAL_TOKENS,
  ...NEUTRAL_WORDS,
  ...TINY_POSITIVE_WORDS,
  ...TINY_NEGATIVE_WORDS,
  ...Object.keys(TINY_COLOURS),
];
export const TINY_LABELS = ['negative', 'positive'] as const;

export type TinyTextTask = 'feature-extraction' | 'text-classification';

export interface TinyModelOptions {
  /** Width of the embeddings; at least 4 (colour and sentiment dimensions). Default 16. */
  hidden?: number;
  /** Seed of the noise dimensions and the projection. Default 1. */
  seed?: number;
}

/** A tiny model as written. */
export interface TinyModel {
  folder: string;
  /** Width of the vectors: last_hidden_state, text_embeds, image_embeds. */
  dim: number;
  /** Relative paths of the files written. */
  files: string[];
}

const MAX_POSITIONS = 64;

/**
 * A BERT-style text model: onnx/model.onnx gives last_hidden_state for
 * 'feature-extraction', or logits over TINY_LABELS for 'text-classification'.
 */
export async function writeTinyTextModel(folder: string, task: TinyTextTask, options: TinyModelOptions = {}): Promise<TinyModel> {
  const { hidden, seed } = settings(options);
  const weights = textWeights(hidden, seed);
  const classification = task === 'text-classification';
  const config: Record<string, unknown> = {
    _name_or_path: `superduper/tiny-bert-${task}`,
    architectures: [classification ? 'BertForSequenceClassification' : 'BertModel'],
    model_type: 'bert',
    hidden_size: hidden,
    num_hidden_layers: 1,
    num_attention_heads: 1,
    intermediate_size: hidden,
    max_position_embeddings: MAX_POSITIONS,
    type_vocab_size: 2,
    vocab_size: TINY_VOCABULARY.length,
    pad_token_id: 0,
  };
  if (classification) {
    config.problem_type = 'single_label_classification';
    config.id2label = Object.fromEntries(TINY_LABELS.map((label, i) => [String(i), label]));
    config.label2id = Object.fromEntries(TINY_LABELS.map((label, i) => [label, i]));
  }
  const model = classification
    ? textClassifierGraph(weights, sentimentClassifier(hidden), TINY_LABELS.length)
    : textEncoderGraph(weights, projection(hidden, seed));
  return writeFolder(folder, hidden, {
    'config.json': json(config),
    'tokenizer.json': json(tokenizerJson()),
    'tokenizer_config.json': json(tokenizerConfig()),
    'onnx/model.onnx': model,
  });
}

/**
 * A CLIP-style folder (model_type "clip"): onnx/vision_model.onnx with a
 * CLIPImageProcessor for 'image-feature-extraction', and onnx/text_model.onnx
 * with the tokenizer for 'feature-extraction', both giving vectors of one space.
 * An image's embedding is its average colour through the text projection, where
 * the text tower puts colour words: "a red square" is nearest to red images.
 */
export async function writeTinyClipModel(folder: string, options: TinyModelOptions = {}): Promise<TinyModel> {
  const { hidden, seed } = settings(options);
  const config = {
    _name_or_path: 'superduper/tiny-clip',
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: hidden,
    text_config: { model_type: 'clip_text_model', hidden_size: hidden, vocab_size: TINY_VOCABULARY.length, max_position_embeddings: MAX_POSITIONS },
    vision_config: { model_type: 'clip_vision_model', hidden_size: hidden, image_size: 8, patch_size: 8, num_channels: 3 },
  };
  const textProjection = projection(hidden, seed);
  // The colour rows of the text projection: a pixel colour (r, g, b) lands where
  // the text tower puts the word vector (r, g, b, 0, ...).
  const colourRows = textProjection.slice(0, 3 * hidden);
  return writeFolder(folder, hidden, {
    'config.json': json(config),
    'preprocessor_config.json': json(imageProcessor('CLIPImageProcessor')),
    'tokenizer.json': json(tokenizerJson()),
    'tokenizer_config.json': json(tokenizerConfig()),
    'onnx/text_model.onnx': clipTextGraph(textWeights(hidden, seed), textProjection),
    'onnx/vision_model.onnx': visionEncoderGraph(colourRows, hidden),
  });
}

/**
 * A ViT-style vision model (model_type "vit", onnx/model.onnx) whose
 * last_hidden_state has one vector per pixel: the runtime pools them. For a
 * one-colour image every pixel, so every pooling, gives the CLIP-style model's
 * image embedding (same options).
 */
export async function writeTinyVitModel(folder: string, options: TinyModelOptions = {}): Promise<TinyModel> {
  const { hidden, seed } = settings(options);
  const config = { _name_or_path: 'superduper/tiny-vit', architectures: ['ViTModel'], model_type: 'vit', hidden_size: hidden, image_size: 8, patch_size: 1, num_channels: 3 };
  return writeFolder(folder, hidden, {
    'config.json': json(config),
    'preprocessor_config.json': json(imageProcessor('ViTImageProcessor')),
    'onnx/model.onnx': patchEncoderGraph(projection(hidden, seed).slice(0, 3 * hidden), hidden),
  });
}

/** Resize and crop to 8 × 8, then map each channel from 0..255 to -1..1. */
function imageProcessor(type: string): Record<string, unknown> {
  return {
    image_processor_type: type,
    do_convert_rgb: true,
    do_resize: true,
    size: type === 'CLIPImageProcessor' ? { shortest_edge: 8 } : { height: 8, width: 8 },
    resample: 3,
    do_center_crop: type === 'CLIPImageProcessor',
    crop_size: { height: 8, width: 8 },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
  };
}

function settings(options: TinyModelOptions): { hidden: number; seed: number } {
  const hidden = options.hidden ?? 16;
  if (!Number.isInteger(hidden) || hidden < 4) throw new Error(`a tiny model needs hidden >= 4 (colour and sentiment dimensions); got ${hidden}`);
  return { hidden, seed: options.seed ?? 1 };
}

function textWeights(hidden: number, seed: number): TextEncoderWeights {
  const vocabSize = TINY_VOCABULARY.length;
  const words = scaled(randomMatrix(vocabSize * hidden, seed), 0.2);
  TINY_VOCABULARY.forEach((word, id) => {
    const row = id * hidden;
    const colour = TINY_COLOURS[word];
    for (let d = 0; d < 3; d++) words[row + d] = colour ? colour[d]! / 127.5 - 1 : 0;
    words[row + 3] = TINY_POSITIVE_WORDS.includes(word) ? 1 : TINY_NEGATIVE_WORDS.includes(word) ? -1 : 0;
  });
  return {
    words,
    // Small against the words, so that word order moves a vector a little.
    positions: scaled(randomMatrix(MAX_POSITIONS * hidden, seed + 1), 0.02),
    tokenTypes: scaled(randomMatrix(2 * hidden, seed + 2), 0.02),
    vocabSize,
    hidden,
    maxPositions: MAX_POSITIONS,
  };
}

/** Identity plus seeded noise: mixes the dimensions but keeps colours apart. */
function projection(hidden: number, seed: number): Float32Array {
  const matrix = scaled(randomMatrix(hidden * hidden, seed + 3), 0.1);
  for (let i = 0; i < hidden; i++) matrix[i * hidden + i]! += 1;
  return matrix;
}

/** hidden × labels: only the sentiment dimension counts. */
function sentimentClassifier(hidden: number): Float32Array {
  const matrix = new Float32Array(hidden * TINY_LABELS.length);
  matrix[3 * TINY_LABELS.length + 0] = -4; // negative
  matrix[3 * TINY_LABELS.length + 1] = 4; // positive
  return matrix;
}

function scaled(values: Float32Array, factor: number): Float32Array {
  for (let i = 0; i < values.length; i++) values[i]! *= factor;
  return values;
}

/** A Hugging Face tokenizers file for a lower-casing BERT WordPiece tokenizer. */
function tokenizerJson(): Record<string, unknown> {
  const id = (token: string) => TINY_VOCABULARY.indexOf(token);
  const special = (token: string) => ({ id: token, ids: [id(token)], tokens: [token] });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((token) => ({
      id: id(token),
      content: token,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': special('[CLS]'), '[SEP]': special('[SEP]') },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(TINY_VOCABULARY.map((token, i) => [token, i])),
    },
  };
}

function tokenizerConfig(): Record<string, unknown> {
  return {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: true,
    // Longer texts are truncated to what the position embedding covers.
    model_max_length: MAX_POSITIONS,
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    mask_token: '[MASK]',
  };
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

async function writeFolder(folder: string, dim: number, files: Record<string, Uint8Array>): Promise<TinyModel> {
  for (const [path, bytes] of Object.entries(files)) {
    await mkdir(dirname(join(folder, path)), { recursive: true });
    await writeFile(join(folder, path), bytes);
  }
  return { folder, dim, files: Object.keys(files) };
}
