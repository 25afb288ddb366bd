/**
 * A piece of a document, with where it came from: `text` is exactly
 * `source.slice(start, end)` (character offsets, UTF-16 code units as
 * JavaScript counts them), so a chunk can be shown in its context and its
 * lineage kept. `headings` is the path of Markdown headings it sits under.
 */
export interface Chunk {
  text: string;
  start: number;
  end: number;
  headings?: string[];
}

/** How long a text is, in the unit a chunk's size is given in (characters, or a tokenizer's tokens). */
export type LengthFunction = (text: string) => number;

export interface SplitOptions {
  /** The most a chunk may hold, in the unit of `length`. */
  size: number;
  /** How much of the end of a chunk the next one repeats, in the same unit (0: none). */
  overlap?: number;
  /** Characters by default. */
  length?: LengthFunction;
  /** Where to split, tried in order (the last, '', splits anywhere). */
  separators?: string[];
}
