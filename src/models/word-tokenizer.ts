/**
 * A dependency-free tokenizer for ONNX graphs that embed words by id: lower-cased
 * words (letters and digits), each hashed (FNV-1a) into 1..vocab_size-1, padded
 * with 0 to max_length. Deterministic across processes and machines, so a model
 * trained or compiled against it (see onnx-builder.ts) needs no vocabulary file.
 * Models with a real vocabulary use the Hugging Face tokenizer instead.
 */
export interface WordTokenizerConfig {
  type: 'words';
  vocab_size: number;
  max_length: number;
}

export function wordIds(text: string, config: WordTokenizerConfig): number[] {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.slice(0, config.max_length).map((word) => 1 + (fnv1a(word) % (config.vocab_size - 1)));
}

export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Token ids and attention mask of a batch, padded to max_length, as int64 data. */
export function tokenizeBatch(texts: readonly string[], config: WordTokenizerConfig): { ids: BigInt64Array; mask: BigInt64Array } {
  const ids = new BigInt64Array(texts.length * config.max_length);
  const mask = new BigInt64Array(texts.length * config.max_length);
  texts.forEach((text, row) => {
    wordIds(text, config).forEach((id, position) => {
      ids[row * config.max_length + position] = BigInt(id);
      mask[row * config.max_length + position] = 1n;
    });
  });
  return { ids, mask };
}
