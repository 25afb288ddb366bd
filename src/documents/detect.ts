/** The formats a document's text is extracted from. Markdown is text: it is chunked as written. */
export type DocumentFormat = 'pdf' | 'docx' | 'html' | 'markdown' | 'text';

/** What may tell a document's format besides its bytes: a file name or URL, an HTTP content-type. */
export interface FormatHints {
  name?: string;
  contentType?: string;
}

/** A format, or why the bytes are none of them (with the advice for the row). */
export type Detection = { format: DocumentFormat; charset?: string } | { unsupported: string; hint: string };

/** What a row whose document is none of them is told. */
export const SUPPORTED = 'chunkers read PDF, DOCX, HTML, Markdown and UTF-8 text';

const EXTENSIONS: Record<string, DocumentFormat> = {
  pdf: 'pdf',
  docx: 'docx',
  html: 'html',
  htm: 'html',
  xhtml: 'html',
  md: 'markdown',
  markdown: 'markdown',
  txt: 'text',
  text: 'text',
};

const CONTENT_TYPES: Record<string, DocumentFormat> = {
  'application/pdf': 'pdf',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'text/html': 'html',
  'application/xhtml+xml': 'html',
  'text/markdown': 'markdown',
  'text/x-markdown': 'markdown',
  'text/plain': 'text',
};

/** Binary formats recognised by their first bytes only to say what they are. */
const OTHER_MAGIC: Array<[bytes: number[], what: string, hint: string]> = [
  [[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1], 'an old Office file (.doc, .xls, .ppt)', 'save it as .docx or PDF'],
  [[0x89, 0x50, 0x4e, 0x47], 'a PNG image', SUPPORTED],
  [[0xff, 0xd8, 0xff], 'a JPEG image', SUPPORTED],
  [[0x47, 0x49, 0x46, 0x38], 'a GIF image', SUPPORTED],
  [[0x1f, 0x8b], 'gzip-compressed data', 'store the document itself, uncompressed'],
];

/** Zip-based formats that are not DOCX, by an entry each holds. */
const OTHER_ZIPS: Array<[entry: string, what: string]> = [
  ['xl/', 'an Excel workbook (.xlsx)'],
  ['ppt/', 'a PowerPoint file (.pptx)'],
  ['mimetypeapplication/vnd.oasis.opendocument', 'an OpenDocument file (.odt, .ods, .odp)'],
];

/**
 * Tags that start an HTML document, as browsers sniff them (the WHATWG MIME
 * sniffing list), followed by a space or ">". "<!--" is left out: a Markdown
 * file may start with a comment, and a Markdown file read as HTML loses its
 * headings.
 */
const HTML_STARTS = ['!doctype html', 'html', 'head', 'script', 'iframe', 'h1', 'div', 'font', 'table', 'a', 'style', 'title', 'b', 'body', 'br', 'p'];

const latin1 = (bytes: Uint8Array, start: number, end: number) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1', start, end);

/**
 * A document's format, from its bytes first: "%PDF-" starts a PDF (within its
 * first 1024 bytes, as readers allow), a zip holding word/ is a DOCX, and
 * text that starts with an HTML tag is HTML; a path's extension or a
 * content-type decides between HTML, Markdown and text, and must agree with
 * the bytes for PDF and DOCX (a "report.pdf" that does not start with %PDF- is
 * no PDF). Anything else is text, read as UTF-8.
 */
export function detectFormat(bytes: Uint8Array, hints: FormatHints = {}): Detection {
  const hinted = formatFromHints(hints);
  const head = latin1(bytes, 0, Math.min(bytes.length, 1024));
  if (head.includes('%PDF-')) return { format: 'pdf' };
  if (head.startsWith('PK\x03\x04')) {
    const zip = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Entry names are stored uncompressed, in each entry's header and in the
    // directory at the end, so finding one needs no unzipping.
    if (zip.includes('word/document.xml') || hinted?.format === 'docx') return { format: 'docx' };
    const other = OTHER_ZIPS.find(([entry]) => zip.includes(entry));
    if (other) return { unsupported: `${other[1]}, not a DOCX`, hint: SUPPORTED };
    return { unsupported: 'a zip archive without word/document.xml, so no DOCX (or a DOCX cut short)', hint: 'store the complete .docx file' };
  }
  if (hinted?.format === 'pdf') {
    return { unsupported: `named like a PDF (${hinted.by}) but it does not start with %PDF-`, hint: 'store the PDF file itself' };
  }
  if (hinted?.format === 'docx') {
    return {
      unsupported: `named like a DOCX (${hinted.by}) but it is not a zip archive`,
      hint: 'store the .docx file itself (old .doc files are not read: save them as .docx)',
    };
  }
  for (const [magic, what, hint] of OTHER_MAGIC) {
    if (magic.every((byte, i) => bytes[i] === byte)) return { unsupported: what, hint };
  }
  const charset = charsetOf(hints.contentType);
  const withCharset = (format: DocumentFormat) => (charset === undefined ? { format } : { format, charset });
  if (hinted) return withCharset(hinted.format);
  return withCharset(looksLikeHtml(head) ? 'html' : 'text');
}

function formatFromHints(hints: FormatHints): { format: DocumentFormat; by: string } | undefined {
  const type = hints.contentType?.split(';')[0]?.trim().toLowerCase();
  if (type && type in CONTENT_TYPES) return { format: CONTENT_TYPES[type]!, by: `content-type ${type}` };
  if (hints.name === undefined) return undefined;
  // The extension of a URL's path, not of its query or fragment.
  const path = /^https?:\/\//i.test(hints.name) ? safePathname(hints.name) : hints.name;
  const extension = /\.([a-z0-9]+)$/i.exec(path)?.[1]?.toLowerCase();
  if (extension && extension in EXTENSIONS) return { format: EXTENSIONS[extension]!, by: `.${extension}` };
  return undefined;
}

function safePathname(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

function charsetOf(contentType: string | undefined): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1];
}

/** Whether text starts (after a byte-order mark, white space and an XML declaration) with an HTML tag. */
export function looksLikeHtml(head: string): boolean {
  let text = head.replace(/^(\xef\xbb\xbf)?\s*/, '');
  if (text.startsWith('<?xml')) text = text.slice(text.indexOf('?>') + 2).trimStart();
  if (!text.startsWith('<')) return false;
  const lower = text.slice(1, 16).toLowerCase();
  return HTML_STARTS.some((tag) => lower.startsWith(tag) && /^[\s>]/.test(lower.slice(tag.length) || '>'));
}
