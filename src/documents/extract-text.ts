import { SuperduperError } from '../errors.js';
import { detectFormat, SUPPORTED, type DocumentFormat, type FormatHints } from './detect.js';
import { documentBytesFor } from './document-source.js';
import { docxText } from './docx.js';
import { htmlText } from './html.js';
import { pdfText } from './pdf.js';
import { decodeText, normaliseNewlines } from './text.js';

interface Extractor {
  extract: (bytes: Uint8Array, charset?: string) => Promise<string>;
  /** What a failure means, after the document's name. */
  failed: string;
  /** What the user can do about it. */
  hint: string;
}

const EXTRACTORS: Record<DocumentFormat, Extractor> = {
  pdf: {
    extract: pdfText,
    failed: 'starts like a PDF (%PDF-) but cannot be read as one',
    hint: 'store the complete PDF file; if it is damaged, export it again from the program that made it',
  },
  docx: {
    extract: docxText,
    failed: 'looks like a DOCX but cannot be read as one',
    hint: 'store the complete .docx file; if it is damaged, save it again from Word or LibreOffice',
  },
  html: { extract: htmlText, failed: 'is HTML but cannot be read', hint: 'store it as UTF-8, or declare its charset (<meta charset="...">)' },
  markdown: { extract: async (bytes, charset) => decodeText(bytes, charset), failed: 'is Markdown but cannot be read', hint: 'store it as UTF-8 text' },
  text: { extract: async (bytes, charset) => decodeText(bytes, charset), failed: 'is not a PDF, DOCX or HTML file, and not text either', hint: SUPPORTED },
};

/**
 * The text of a row's document, for a chunker with source "document": the
 * input is bytes (a bytea column arrives as a Buffer) or text naming a file or
 * URL where the sidecar's operator allows it (document-source.ts). The format
 * is detected (detect.ts) and its text extracted; line ends become "\n". A
 * document that cannot be read throws an error naming the model, what is
 * wrong with the row's document and, as its hint, what to do; the sidecar
 * then fails that row alone.
 */
export async function extractText(model: string, input: unknown, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const subject = `chunker model "${model}"`;
  let bytes: Uint8Array;
  let label: string;
  let hints: FormatHints = {};
  if (input instanceof Uint8Array) {
    bytes = input;
    label = `the row's document (${input.byteLength} bytes)`;
  } else if (typeof input === 'string') {
    if (input === '') return '';
    const named = await documentBytesFor(subject, input, env);
    bytes = named.bytes;
    label = named.from === 'file' ? `document file "${named.name}"` : `document ${named.name}`;
    hints = named.contentType === undefined ? { name: named.name } : { name: named.name, contentType: named.contentType };
  } else {
    const got = input === null ? 'null' : `a ${typeof input}`;
    throw new Error(`${subject} takes documents as bytes (a bytea column) or, where the operator allows it, text naming a file or URL; got ${got}`);
  }
  if (bytes.byteLength === 0) return '';

  const detected = detectFormat(bytes, hints);
  if ('unsupported' in detected) throw new SuperduperError(`${subject}: ${label} is ${detected.unsupported}`, { hint: detected.hint });
  const extractor = EXTRACTORS[detected.format];
  let text: string;
  try {
    text = await extractor.extract(bytes, detected.charset);
  } catch (error) {
    const reason = (error as Error).message;
    if ((error as Error).name === 'PasswordException') {
      throw new SuperduperError(`${subject}: ${label} is a password-protected PDF`, { hint: 'store it without its password', cause: error });
    }
    throw new SuperduperError(`${subject}: ${label} ${extractor.failed}: ${reason}`, { hint: extractor.hint, cause: error });
  }
  // PostgreSQL's text cannot hold NUL, which a PDF's or DOCX's text may.
  return normaliseNewlines(text).replaceAll('\0', '');
}
