import type { Heading, Nodes } from 'mdast';
import { fromMarkdown } from 'mdast-util-from-markdown';
import { toString } from 'mdast-util-to-string';
import { DEFAULT_SEPARATORS, splitSpan } from './recursive.js';
import type { Chunk, SplitOptions } from './types.js';

/**
 * The Markdown splitter: sections begin at headings (as a CommonMark parser
 * finds them: a `#` line inside a code fence is not one), each section is
 * split like splitRecursive, and each chunk carries the path of headings it
 * sits under (["Install", "On Debian"]). Text before the first heading has
 * an empty path. A section never shares a chunk with another.
 */
export function splitMarkdown(source: string, options: SplitOptions): Chunk[] {
  const tree = fromMarkdown(source);
  const headings: Array<{ start: number; depth: number; title: string }> = [];
  const walk = (node: Nodes) => {
    if (node.type === 'heading') {
      const heading = node as Heading;
      headings.push({ start: heading.position!.start.offset!, depth: heading.depth, title: toString(heading).trim() });
      return;
    }
    if ('children' in node) for (const child of node.children) walk(child as Nodes);
  };
  walk(tree);

  const resolved = {
    size: options.size,
    overlap: options.overlap ?? 0,
    length: options.length ?? ((text: string) => text.length),
    separators: options.separators ?? DEFAULT_SEPARATORS,
  };
  const chunks: Chunk[] = [];
  const path: Array<{ depth: number; title: string }> = [];
  const sections = [{ start: 0, depth: 0, title: '' }, ...headings];
  sections.forEach((section, i) => {
    if (section.depth > 0) {
      while (path.length > 0 && path.at(-1)!.depth >= section.depth) path.pop();
      path.push({ depth: section.depth, title: section.title });
    }
    const end = sections[i + 1]?.start ?? source.length;
    const titles = path.map((p) => p.title);
    for (const chunk of splitSpan(source, section.start, end, resolved)) chunks.push({ ...chunk, headings: titles });
  });
  return chunks;
}
