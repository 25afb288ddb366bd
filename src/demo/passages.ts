import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One passage of the project's documentation: the demo's corpus. */
export interface Passage {
  file: string;
  heading: string;
  body: string;
}

/** Passages of about this many characters: a paragraph or a few, one topic each. */
const TARGET_LENGTH = 300;

/**
 * The demo's documents: the project's own README and docs/, split into
 * passages under their headings. Real text that is ours to ship, on a subject
 * a new user wants to search anyway.
 */
export function documentationPassages(root = packageRoot()): Passage[] {
  const files = [join(root, 'README.md'), ...markdownFiles(join(root, 'docs'))].filter((file) => existsSync(file));
  return files.flatMap((file) => splitMarkdown(readFileSync(file, 'utf8'), relative(root, file)));
}

/**
 * Sections by heading; in each, prose paragraphs merged up to about
 * TARGET_LENGTH characters. Code blocks are left out (a sentence embedder
 * reads prose), and Markdown syntax is reduced to its text.
 */
export function splitMarkdown(markdown: string, file: string): Passage[] {
  const passages: Passage[] = [];
  let heading = file;
  let paragraph: string[] = [];
  let passage = '';
  let inCode = false;
  const flushPassage = () => {
    if (passage.trim().length >= 40) passages.push({ file, heading, body: passage.trim() });
    passage = '';
  };
  const flushParagraph = () => {
    const text = plainText(paragraph.join(' '));
    paragraph = [];
    // A long paragraph goes in by sentences, so that no passage grows far past the target.
    for (const piece of text.length > TARGET_LENGTH ? sentences(text) : text ? [text] : []) {
      if (passage && passage.length + piece.length > TARGET_LENGTH) flushPassage();
      passage = passage ? `${passage} ${piece}` : piece;
    }
  };
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) {
      inCode = !inCode;
      flushParagraph();
      continue;
    }
    if (inCode) continue;
    const title = /^#{1,6}\s+(.*)$/.exec(line);
    if (title) {
      flushParagraph();
      flushPassage();
      heading = plainText(title[1]!);
      continue;
    }
    const cells = tableCells(line);
    if (cells) {
      // A table row reads as one sentence: "cell: cell; cell". Rules (|---|) are dropped.
      flushParagraph();
      if (cells.some((cell) => !/^:?-+:?$/.test(cell))) {
        paragraph.push(`${cells[0]!.replace(/[.:]$/, "")}: ${cells.slice(1).join("; ")}`);
        flushParagraph();
      }
    } else if (line.trim() === '') flushParagraph();
    else paragraph.push(line.trim().replace(/^([-*+]|\d+\.)\s+/, ''));
  }
  flushParagraph();
  flushPassage();
  return passages;
}

/** The cells of a Markdown table row, or undefined for any other line. */
function tableCells(line: string): string[] | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('|') || !trimmed.endsWith('|')) return undefined;
  return trimmed
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim())
    .filter(Boolean);
}

/** Sentences: split after . ! ? or : followed by a space and a capital, a digit or a quote. */
function sentences(text: string): string[] {
  return text.split(/(?<=[.!?:])\s+(?=[A-Z0-9"'(])/);
}

function plainText(markdown: string): string {
  return markdown
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/`([^`]*)`/g, '$1')
    .replace(/(\*\*|__|\*|_)(\S[^*_]*?)\1/g, '$2')
    .replace(/\s+/g, ' ')
    .trim();
}

function markdownFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => join(dir, name));
}

/** The folder of superduper's package.json (where README.md and docs/ are), from src/ or dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'superduper') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the superduper package folder (with README.md and docs/)');
    dir = parent;
  }
}
