import type { Chunk, SplitOptions } from './types.js';

/** Paragraphs, then lines, then sentences, then words, then anywhere. */
export const DEFAULT_SEPARATORS = ['\n\n', '\n', '. ', ' ', ''];

interface Piece {
  start: number;
  end: number;
  length: number;
}

/**
 * The recursive character splitter (as LangChain's and pgai's), keeping each
 * chunk's character span in the source: split at the first separator that
 * occurs, split again any piece still too long at the next one, then merge
 * neighbouring pieces into chunks of at most `size`, the next chunk starting
 * with up to `overlap` of the last one's end. Separators stay with the piece
 * before them, so pieces cover the text and a chunk is a slice of it; a
 * chunk's leading and trailing whitespace is left out of its span.
 *
 * Pieces are merged by the sum of their lengths, and each chunk is then
 * measured whole (see merge): a chunk never holds more than `size` as
 * `length` counts its text, whether or not that length adds up over pieces.
 */
export function splitRecursive(source: string, options: SplitOptions): Chunk[] {
  const size = options.size;
  const overlap = options.overlap ?? 0;
  const length = options.length ?? ((text: string) => text.length);
  const separators = options.separators ?? DEFAULT_SEPARATORS;
  if (!Number.isFinite(size) || size < 1) throw new Error(`chunk size must be a positive number (got ${size})`);
  if (!Number.isFinite(overlap) || overlap < 0 || overlap >= size) throw new Error(`chunk overlap must be at least 0 and less than the size ${size} (got ${overlap})`);
  return splitSpan(source, 0, source.length, { size, overlap, length, separators });
}

/** splitRecursive over `source.slice(start, end)`, spans in the whole source's offsets. */
export function splitSpan(source: string, start: number, end: number, options: Required<SplitOptions>): Chunk[] {
  const pieces = piecesOf(source, start, end, options.separators, options);
  return merge(source, pieces, options);
}

function piecesOf(source: string, start: number, end: number, separators: string[], options: Required<SplitOptions>): Piece[] {
  const whole = options.length(source.slice(start, end));
  if (whole <= options.size) return start < end ? [{ start, end, length: whole }] : [];
  const index = separators.findIndex((sep) => sep === '' || source.slice(start, end).includes(sep));
  const separator = separators[index] ?? '';
  const rest = separators.slice(index + 1);
  const out: Piece[] = [];
  for (const [s, e] of cut(source, start, end, separator)) {
    const length = options.length(source.slice(s, e));
    if (length <= options.size || separator === '') out.push({ start: s, end: e, length });
    else out.push(...piecesOf(source, s, e, rest, options));
  }
  return out;
}

/** Spans between occurrences of `separator` (each kept at the end of the span before it); '' cuts between code points. */
function cut(source: string, start: number, end: number, separator: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  if (separator === '') {
    for (let i = start; i < end; ) {
      const step = (source.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
      spans.push([i, Math.min(end, i + step)]);
      i += step;
    }
    return spans;
  }
  let from = start;
  for (;;) {
    const at = source.indexOf(separator, from);
    if (at === -1 || at + separator.length > end) break;
    spans.push([from, at + separator.length]);
    from = at + separator.length;
  }
  if (from < end) spans.push([from, end]);
  return spans;
}

/**
 * Pieces into chunks. Summing piece lengths is the fast guess, and exact for
 * characters; a tokenizer may count a chunk's text differently from the sum
 * of its pieces (a BPE merge across a piece boundary can break two tokens
 * into three), so each chunk is measured whole before it is emitted, and one
 * that is over `size` gives up its last pieces to the next chunk. A single
 * piece over `size` (one code point) is emitted as it is: it cannot be cut.
 */
function merge(source: string, pieces: Piece[], options: Required<SplitOptions>): Chunk[] {
  const chunks: Chunk[] = [];
  let first = 0; // the current chunk's first piece
  while (first < pieces.length) {
    let last = first;
    let total = pieces[first]!.length;
    while (last + 1 < pieces.length && total + pieces[last + 1]!.length <= options.size) total += pieces[++last]!.length;
    let chunk = trimmed(source, pieces[first]!.start, pieces[last]!.end);
    while (chunk && last > first && options.length(chunk.text) > options.size) {
      last--;
      chunk = trimmed(source, pieces[first]!.start, pieces[last]!.end);
    }
    if (chunk && chunks.at(-1)?.end !== chunk.end) chunks.push(chunk);
    if (last + 1 >= pieces.length) break;
    // The next chunk begins with the last pieces of this one, up to `overlap`,
    // and never so many that the piece after this chunk would not fit beside
    // them, nor all of them (it would not move on).
    const after = pieces[last + 1]!.length;
    let kept = 0;
    let next = last + 1;
    while (next - 1 > first && kept + pieces[next - 1]!.length <= options.overlap && kept + pieces[next - 1]!.length + after <= options.size) {
      next--;
      kept += pieces[next]!.length;
    }
    first = next;
  }
  return chunks;
}

function trimmed(source: string, start: number, end: number): Chunk | undefined {
  while (start < end && /\s/.test(source[start]!)) start++;
  while (end > start && /\s/.test(source[end - 1]!)) end--;
  return start < end ? { text: source.slice(start, end), start, end } : undefined;
}
