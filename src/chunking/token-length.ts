import type { LengthFunction } from './types.js';

/**
 * What counting needs of a tokenizer (transformers.js's PreTrainedTokenizer
 * has it); declared structurally so that the splitters do not import
 * transformers.js.
 */
export interface TokenEncoder {
  encode(text: string, options: { add_special_tokens: boolean }): ArrayLike<number>;
}

/**
 * A chunk's length in a tokenizer's tokens, without the special tokens
 * ([CLS], [SEP], <s>, ...) the tokenizer adds around a whole input: those are
 * added once per embedded text, not once per piece, so counting them per piece
 * would make chunks smaller than asked. A model that adds two of them to a
 * 512-token window wants size 510.
 */
export function tokenLength(tokenizer: TokenEncoder): LengthFunction {
  return (text) => (text === '' ? 0 : tokenizer.encode(text, { add_special_tokens: false }).length);
}
