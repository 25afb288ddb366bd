import { describe, expect, it } from 'vitest';
import { splitMarkdown } from '../../src/chunking/markdown.js';
import { splitRecursive } from '../../src/chunking/recursive.js';
import type { Chunk, LengthFunction } from '../../src/chunking/types.js';

/** A deterministic document: paragraphs of sentences of words. */
function document(paragraphs: number, seed = 1): string {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const words = ['data', 'base', 'vector', 'index', 'model', 'query', 'row', 'table', 'sidecar', 'output', 'listener', 'chunk'];
  const sentence = () => `${Array.from({ length: 4 + Math.floor(next() * 12) }, () => words[Math.floor(next() * words.length)]).join(' ')}.`;
  return Array.from({ length: paragraphs }, () => Array.from({ length: 1 + Math.floor(next() * 5) }, sentence).join(' ')).join('\n\n');
}

/** What every chunking must keep: exact spans, in order, within size, trimmed, and nothing of the text left out. */
function expectWellFormed(source: string, chunks: Chunk[], size: number, length: LengthFunction = (t) => t.length): void {
  expect(chunks.length).toBeGreaterThan(0);
  let covered = 0;
  chunks.forEach((chunk, i) => {
    expect(source.slice(chunk.start, chunk.end), `chunk ${i}'s span`).toBe(chunk.text);
    expect(length(chunk.text), `chunk ${i}'s size`).toBeLessThanOrEqual(size);
    expect(chunk.text).toBe(chunk.text.trim());
    if (i > 0) expect(chunk.start).toBeGreaterThan(chunks[i - 1]!.start);
    expect(source.slice(covered, chunk.start).trim(), `text before chunk ${i} left out`).toBe('');
    covered = Math.max(covered, chunk.end);
  });
  expect(source.slice(covered).trim()).toBe('');
}

describe('the recursive character splitter', () => {
  it('keeps exact spans within the size, leaving nothing out', () => {
    const source = document(40);
    for (const [size, overlap] of [
      [200, 0],
      [500, 50],
      [1000, 200],
      [64, 16],
    ] as const) {
      expectWellFormed(source, splitRecursive(source, { size, overlap }), size);
    }
  });

  it('cuts between paragraphs before lines, sentences and words', () => {
    const paragraphs = ['first paragraph, short.', 'second paragraph, also short.', 'third one.'];
    const chunks = splitRecursive(paragraphs.join('\n\n'), { size: 35 });
    expect(chunks.map((c) => c.text)).toEqual(paragraphs);
    const sentences = splitRecursive('One sentence here. Another sentence there. A third.', { size: 25 });
    expect(sentences.map((c) => c.text)).toEqual(['One sentence here.', 'Another sentence there.', 'A third.']);
  });

  it('repeats up to `overlap` of the end of a chunk at the start of the next', () => {
    const source = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
    const chunks = splitRecursive(source, { size: 40, overlap: 12 });
    expectWellFormed(source, chunks, 40);
    for (let i = 1; i < chunks.length; i++) {
      const shared = chunks[i - 1]!.end - chunks[i]!.start;
      expect(shared, `overlap of chunks ${i - 1} and ${i}`).toBeGreaterThan(0);
      expect(shared).toBeLessThanOrEqual(12);
    }
    const none = splitRecursive(source, { size: 40 });
    for (let i = 1; i < none.length; i++) expect(none[i]!.start).toBeGreaterThanOrEqual(none[i - 1]!.end);
  });

  it('splits a word longer than the size anywhere, but never inside a character', () => {
    const source = `${'x'.repeat(25)} ${'😀'.repeat(12)}`;
    const chunks = splitRecursive(source, { size: 10 });
    expectWellFormed(source, chunks, 10);
    for (const chunk of chunks) expect(chunk.text).not.toMatch(/[\ud800-\udbff]$|^[\udc00-\udfff]/);
  });

  it('counts in tokens when given a tokenizer', () => {
    const words: LengthFunction = (text) => text.split(/\s+/).filter(Boolean).length;
    const source = document(30, 7);
    const chunks = splitRecursive(source, { size: 50, overlap: 10, length: words });
    expectWellFormed(source, chunks, 50, words);
    expect(Math.max(...chunks.map((c) => words(c.text)))).toBeGreaterThan(40); // filled, not cut short
  });

  it('an empty or blank text has no chunks; bad sizes are refused, naming them', () => {
    expect(splitRecursive('', { size: 10 })).toEqual([]);
    expect(splitRecursive(' \n\n ', { size: 10 })).toEqual([]);
    expect(() => splitRecursive('x', { size: 0 })).toThrow(/chunk size must be a positive number \(got 0\)/);
    expect(() => splitRecursive('x', { size: 10, overlap: 10 })).toThrow(/chunk overlap must be at least 0 and less than the size 10 \(got 10\)/);
  });
});

describe('the Markdown splitter', () => {
  const source = [
    'A preamble before any heading.',
    '',
    '# Install',
    '',
    'Run the installer.',
    '',
    '## On Debian',
    '',
    'apt-get install it.',
    '',
    '```sh',
    '# not a heading: a comment in a code fence',
    'make demo',
    '```',
    '',
    '## On macOS',
    '',
    'Use brew.',
    '',
    'Usage',
    '=====',
    '',
    'Call `like()` from SQL.',
  ].join('\n');

  it('gives each chunk the path of headings it sits under', () => {
    const chunks = splitMarkdown(source, { size: 200 });
    expectWellFormed(source, chunks, 200);
    expect(chunks.map((c) => [c.headings, c.text.split('\n')[0]])).toEqual([
      [[], 'A preamble before any heading.'],
      [['Install'], '# Install'],
      [['Install', 'On Debian'], '## On Debian'],
      [['Install', 'On macOS'], '## On macOS'],
      [['Usage'], 'Usage'],
    ]);
    expect(chunks[2]!.text).toContain('# not a heading');
  });

  it('splits a long section recursively, every piece keeping its path', () => {
    const long = `# Guide\n\n## Details\n\n${document(20, 3)}\n\n## End\n\nbye`;
    const chunks = splitMarkdown(long, { size: 300, overlap: 30 });
    expectWellFormed(long, chunks, 300);
    const details = chunks.filter((c) => c.headings?.join('/') === 'Guide/Details');
    expect(details.length).toBeGreaterThan(3);
    expect(chunks.at(-1)).toMatchObject({ headings: ['Guide', 'End'] });
  });
});
