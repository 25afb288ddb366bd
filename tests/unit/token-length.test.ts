import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitMarkdown } from '../../src/chunking/markdown.js';
import { splitRecursive } from '../../src/chunking/recursive.js';
import { tokenLength } from '../../src/chunking/token-length.js';
import type { LengthFunction } from '../../src/chunking/types.js';
import { writeTinyTextModel } from '../fixtures/tiny-hf-model.js';

let work: string;
let wordPiece: LengthFunction;
let bpe: LengthFunction;

/**
 * A byte-pair tokenizer whose merge across a line break comes first: "b\n" is
 * one token and "cd" is one, but "b\ncd" is three (b, "\nc", d). A splitter
 * that adds up its pieces' counts would put "b\ncd" in a chunk of size 2.
 */
async function writeCrossingBpe(folder: string): Promise<void> {
  const vocab = { b: 0, '\n': 1, c: 2, d: 3, '\nc': 4, 'b\n': 5, cd: 6 };
  await writeFile(
    join(folder, 'tokenizer.json'),
    JSON.stringify({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      model: { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab, merges: [['\n', 'c'], ['b', '\n'], ['c', 'd']] },
    }),
  );
  await writeFile(join(folder, 'tokenizer_config.json'), '{}');
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'superduper-token-length-'));
  const tiny = await writeTinyTextModel(join(work, 'tiny'), 'feature-extraction');
  wordPiece = tokenLength(await AutoTokenizer.from_pretrained(tiny.folder, { local_files_only: true }));
  await writeCrossingBpe(work);
  bpe = tokenLength(await AutoTokenizer.from_pretrained(work, { local_files_only: true }));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('tokenLength', () => {
  it('counts a real tokenizer\'s tokens, without the special tokens around an input', () => {
    expect(wordPiece('the movie is great')).toBe(4);
    // WordPiece: movie + ##s.
    expect(wordPiece('movies')).toBe(2);
    // An unknown word is one [UNK]; punctuation is a token of its own.
    expect(wordPiece('unknownword')).toBe(1);
    expect(wordPiece('the cat, and the dog.')).toBe(7);
    expect(wordPiece('')).toBe(0);
    expect(wordPiece('  \n ')).toBe(0);
    // Not truncated at the model's maximum length (64 here).
    expect(wordPiece('the cat '.repeat(100))).toBe(200);
  });

  it('is not a sum over pieces for every tokenizer', () => {
    expect(bpe('b\n')).toBe(1);
    expect(bpe('cd')).toBe(1);
    expect(bpe('b\ncd')).toBe(3);
  });
});

describe('splitting by tokens', () => {
  it('never puts more than size tokens in a chunk, even where pieces count less than their join', () => {
    const source = 'b\ncd';
    const chunks = splitRecursive(source, { size: 2, length: bpe });
    for (const chunk of chunks) {
      expect(source.slice(chunk.start, chunk.end)).toBe(chunk.text);
      expect(bpe(chunk.text), JSON.stringify(chunk.text)).toBeLessThanOrEqual(2);
    }
    expect(chunks.map((c) => c.text)).toEqual(['b', 'cd']);
    const longer = Array.from({ length: 30 }, () => 'b\ncd').join('\n');
    for (const size of [2, 3, 5, 8]) {
      for (const chunk of splitRecursive(longer, { size, overlap: 1, length: bpe })) expect(bpe(chunk.text)).toBeLessThanOrEqual(size);
      for (const chunk of splitMarkdown(`# b\n\n${longer}`, { size, length: bpe })) expect(bpe(chunk.text)).toBeLessThanOrEqual(size);
    }
  });

  it('any length function that counts a join as more than its parts: chunks are measured whole', () => {
    // Words, plus one for every "x y" pair: pieces "x " and "y" count 1 each, "x y" counts 3.
    const length: LengthFunction = (text) => text.split(/\s+/).filter(Boolean).length + (text.match(/x y/g) ?? []).length;
    const source = 'a x y b x y c x y d';
    for (const [size, overlap] of [
      [2, 0],
      [3, 1],
      [4, 2],
    ] as const) {
      const chunks = splitRecursive(source, { size, overlap, length });
      for (const chunk of chunks) {
        expect(source.slice(chunk.start, chunk.end)).toBe(chunk.text);
        expect(length(chunk.text), JSON.stringify(chunk.text)).toBeLessThanOrEqual(size);
      }
      // And nothing left out.
      expect(chunks[0]!.start).toBe(0);
      expect(chunks.at(-1)!.end).toBe(source.length);
    }
  });

  it('splits a real tokenizer\'s text into chunks of at most size tokens, with overlap', () => {
    const source = Array.from({ length: 20 }, (_, i) => `the movies of day ${i} are great, but the books are boring.`).join(' ');
    const chunks = splitRecursive(source, { size: 10, overlap: 3, length: wordPiece });
    expect(chunks.length).toBeGreaterThan(10);
    for (const chunk of chunks) expect(wordPiece(chunk.text)).toBeLessThanOrEqual(10);
    const shared = chunks.slice(1).filter((chunk, i) => chunk.start < chunks[i]!.end);
    expect(shared.length).toBeGreaterThan(0);
    for (const chunk of shared) {
      const previous = chunks[chunks.indexOf(chunk) - 1]!;
      expect(wordPiece(source.slice(chunk.start, previous.end))).toBeLessThanOrEqual(3);
    }
  });
});
