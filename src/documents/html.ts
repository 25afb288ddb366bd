import type { FormatCallback, HtmlToTextOptions } from 'html-to-text';
import { decodeText } from './text.js';

/** The largest document a sidecar reads is 50 MB; html-to-text would otherwise cut its input at 16 M characters without a word. */
const MAX_INPUT_CHARACTERS = 64 * 1024 * 1024;

/**
 * Headings as Markdown headings ("## Install"), each a paragraph of its own:
 * the recursive splitter cuts between paragraphs, and the markdown method
 * gives each chunk its heading path, as for a Markdown document.
 */
const markdownHeading: FormatCallback = (elem, walk, builder) => {
  const level = Number(/^h([1-6])$/i.exec(elem.name ?? '')?.[1] ?? 1);
  builder.openBlock({ leadingLineBreaks: 2 });
  builder.addInline(`${'#'.repeat(level)} `);
  walk(elem.children ?? [], builder);
  builder.closeBlock({ trailingLineBreaks: 2 });
};

const OPTIONS: HtmlToTextOptions = {
  // Lines as the page has them: wrapping would add line breaks the splitter takes for structure.
  wordwrap: false,
  limits: { maxInputLength: MAX_INPUT_CHARACTERS },
  formatters: { markdownHeading },
  selectors: [
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, format: 'markdownHeading' })),
    // Link targets and image file names are noise in what gets embedded.
    { selector: 'a', options: { ignoreHref: true } },
    { selector: 'img', format: 'skip' },
    // Cells side by side, not run together (the default "table" format joins them with nothing).
    { selector: 'table', format: 'dataTable', options: { uppercaseHeaderCells: false, maxColumnWidth: 1000 } },
  ],
};

let converter: ((html: string) => string) | undefined;

/**
 * An HTML document's text through html-to-text: paragraphs, list items and
 * headings separated by blank lines, scripts, styles and the head left out,
 * entities decoded. The bytes are UTF-8 unless the content-type or a
 * <meta charset> says otherwise.
 */
export async function htmlText(bytes: Uint8Array, charset?: string): Promise<string> {
  const html = decodeText(bytes, charset ?? declaredCharset(bytes));
  // Imported here and compiled once: the selectors become a decision tree reused for every document.
  converter ??= (await import('html-to-text')).compile(OPTIONS);
  return converter(html);
}

/** The charset a <meta> tag in the first 1024 bytes declares (as browsers look for it). */
export function declaredCharset(bytes: Uint8Array): string | undefined {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 1024)).toString('latin1');
  return /<meta[^>]+charset\s*=\s*["']?([\w-]+)/i.exec(head)?.[1];
}
