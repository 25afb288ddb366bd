import type { StructuredTextItem } from 'unpdf';

interface Line {
  text: string;
  /** The baseline, in PDF units from the bottom of the page. */
  y: number;
  /** The largest font size on the line. */
  size: number;
}

/**
 * A PDF's text, through unpdf (pdf.js built for servers, no worker, no
 * canvas): pages in order, separated by a blank line, and within a page a
 * blank line wherever the gap between two lines is clearly wider than the
 * page's usual line spacing, so that the recursive splitter's paragraph
 * separator ("\n\n") falls between paragraphs, as it does in HTML and DOCX.
 * A PDF without a text layer (a scan) has no text: no OCR is done.
 */
export async function pdfText(bytes: Uint8Array): Promise<string> {
  // Imported here, not at the top: pdf.js is large, and a sidecar without
  // document chunkers should not load it. (unpdf is kept at 1.7: 1.8 declares
  // Node >= 22, and npm warns every install on this project's Node 20.)
  const { extractTextItems, getDocumentProxy } = await import('unpdf');
  // A copy: pdf.js takes over (detaches) the buffer it is given, and a Buffer
  // from the database driver may share its memory with other values.
  // verbosity 0: errors only, not pdf.js's warnings on stdout for every odd file.
  // (This build of pdf.js compiles no font code with eval, so a hostile PDF runs nothing.)
  const pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
  try {
    const { items } = await extractTextItems(pdf);
    return items
      .map((page) => pageText(page))
      .filter((text) => text !== '')
      .join('\n\n');
  } finally {
    await pdf.loadingTask.destroy();
  }
}

/** A page's items as lines, and the lines as paragraphs. */
export function pageText(items: StructuredTextItem[]): string {
  const lines: Line[] = [];
  let current: Line | undefined;
  for (const item of items) {
    // An item on another baseline starts a line even without an end-of-line mark.
    if (current && item.str.trim() !== '' && Math.abs(item.y - current.y) > Math.max(item.fontSize, current.size) / 2) {
      lines.push(current);
      current = undefined;
    }
    if (item.str !== '') {
      if (!current) current = { text: '', y: item.y, size: 0 };
      current.text += item.str;
      if (item.str.trim() !== '') current.size = Math.max(current.size, item.fontSize);
    }
    if (item.hasEOL && current) {
      lines.push(current);
      current = undefined;
    }
  }
  if (current) lines.push(current);
  const kept = lines.map((line) => ({ ...line, text: line.text.trim() })).filter((line) => line.text !== '');
  if (kept.length === 0) return '';

  const pitch = median(kept.slice(1).map((line, i) => kept[i]!.y - line.y).filter((gap) => gap > 0));
  let text = kept[0]!.text;
  for (let i = 1; i < kept.length; i++) {
    const before = kept[i - 1]!;
    const line = kept[i]!;
    const gap = before.y - line.y;
    const size = Math.max(before.size, line.size);
    // A line above the one before (a new column, a text box) or a gap wider
    // than both 1.5 lines of its font and 1.3 times the page's usual spacing
    // (so that double-spaced text is not a paragraph per line) is a paragraph break.
    const paragraph = gap < -size / 2 || (gap > 1.5 * size && (pitch === undefined || gap > 1.3 * pitch));
    text += (paragraph ? '\n\n' : '\n') + line.text;
  }
  return text;
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  // The lower median: on a short page of few lines, paragraph gaps are not taken for the line spacing.
  return sorted[Math.floor((sorted.length - 1) / 2)];
}
