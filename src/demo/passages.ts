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
const TARGET_LENGTH = 400;

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
    if (!text) return;
    if (passage && passage.length + text.length > TARGET_LENGTH) flushPassage();
    passage = passage ? `${passage} ${text}` : text;
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
    if (line.trim() === '') flushParagraph();
    else paragraph.push(line.trim().replace(/^([-*+]|\d+\.)\s+/, ''));
  }
  flushParagraph();
  flushPassage();
  return passages;
}

function plainText(markdown: string): string {
  return markdown
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/`([^`]*)`/g, '$1')
    .replace(/(\*\*|__|\*|_)(\S[^*_]*?)\1/g, '$2')
    .replace(/\s*\|\s*/g, ' | ')
    .replace(/^[\s|:-]+$/, '') // table rules
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
