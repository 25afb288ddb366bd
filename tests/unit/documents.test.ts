/**
 * Documents to text: format detection, each format's extraction from files the
 * tests make with the libraries that write them, the errors a bad file gives,
 * and the operator's rules for files and URLs a row names.
 */
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkerModel } from '../../src/components/model.js';
import { detectFormat } from '../../src/documents/detect.js';
import { extractText } from '../../src/documents/extract-text.js';
import { invalidUtf8At } from '../../src/documents/text.js';
import { ChunkerRuntime, checkChunkerConfig } from '../../src/models/chunker-runtime.js';
import { bytesNamedByRow, type RowSourceRules } from '../../src/models/row-source.js';
import { makeDocx, makePdf, utf8 } from '../helpers/documents.js';

const format = (bytes: Uint8Array, hints = {}) => {
  const detected = detectFormat(bytes, hints);
  return 'format' in detected ? detected.format : `unsupported: ${detected.unsupported}`;
};

/** The error extractText throws, as the failures table would show it (message and hint). */
async function failure(input: unknown, env: NodeJS.ProcessEnv = {}): Promise<{ message: string; hint?: string }> {
  try {
    await extractText('docs', input, env);
  } catch (error) {
    return { message: (error as Error).message, hint: (error as { hint?: string }).hint };
  }
  throw new Error('extractText did not fail');
}

let pdf: Uint8Array;
let docx: Uint8Array;

beforeAll(async () => {
  pdf = await makePdf([
    [
      ['Invoices are sent on the first day', 'of every month, by email.'],
      ['Payment is due within thirty days.', 'Late payments cost two percent', 'per month.'],
    ],
    [['Page two holds the appendix.']],
  ]);
  docx = await makeDocx('Refund policy', ['Refunds are paid within fourteen days.', 'Ask support for a form.']);
});

describe('format detection', () => {
  it('knows PDF and DOCX by their bytes, whatever the name says', async () => {
    expect(format(pdf)).toBe('pdf');
    expect(format(pdf, { name: 'notes.txt' })).toBe('pdf');
    // Some writers put bytes before the header; readers look in the first 1024.
    expect(format(Buffer.concat([Buffer.alloc(100, 0x20), Buffer.from(pdf)]))).toBe('pdf');
    expect(format(docx)).toBe('docx');
    expect(format(docx, { contentType: 'application/octet-stream' })).toBe('docx');
  });

  it('sniffs HTML from its first tag, and takes anything else for text', () => {
    expect(format(utf8('<!DOCTYPE html><html><body>x</body></html>'))).toBe('html');
    expect(format(utf8('\ufeff\n  <html lang="en"><p>x</p></html>'))).toBe('html');
    expect(format(utf8('<p>A fragment.</p>'))).toBe('html');
    expect(format(utf8('<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"></html>'))).toBe('html');
    expect(format(utf8('# Title\n\nSome *Markdown*.'))).toBe('text');
    // A Markdown file may open with a comment or an inline tag that is not in the list.
    expect(format(utf8('<!-- generated -->\n# Title'))).toBe('text');
    expect(format(utf8('<abbr>PDF</abbr> files'))).toBe('text');
  });

  it('lets a name or content-type choose among HTML, Markdown and text', () => {
    const html = utf8('<p>x</p>');
    expect(format(html, { name: 'README.md' })).toBe('markdown');
    expect(format(utf8('plain words'), { name: 'page.HTM' })).toBe('html');
    expect(format(utf8('# T'), { name: 'https://example.com/docs/guide.markdown?rev=2#top' })).toBe('markdown');
    expect(format(html, { contentType: 'text/plain; charset=utf-8' })).toBe('text');
    expect(format(utf8('x'), { contentType: 'text/html; charset=ISO-8859-1' })).toBe('html');
    expect(detectFormat(utf8('x'), { contentType: 'text/html; charset=ISO-8859-1' })).toEqual({ format: 'html', charset: 'ISO-8859-1' });
  });

  it('says what bytes are when they are no document it reads', () => {
    expect(format(utf8('Quarterly report'), { name: 'report.pdf' })).toBe('unsupported: named like a PDF (.pdf) but it does not start with %PDF-');
    expect(format(utf8('Quarterly report'), { name: 'report.docx' })).toMatch(/^unsupported: named like a DOCX \(\.docx\) but it is not a zip archive/);
    expect(format(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe('unsupported: a PNG image');
    expect(format(Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0]))).toMatch(/old Office file/);
    expect(format(Buffer.from('PK\x03\x04\x14\x00xl/workbook.xml', 'latin1'))).toBe('unsupported: an Excel workbook (.xlsx), not a DOCX');
    expect(format(Buffer.from('PK\x03\x04\x14\x00notes.txt', 'latin1'))).toMatch(/zip archive without word\/document.xml/);
  });
});

describe('extraction', () => {
  it('reads a PDF page by page, a blank line between paragraphs and between pages', async () => {
    expect(await extractText('docs', Buffer.from(pdf))).toBe(
      'Invoices are sent on the first day\nof every month, by email.\n\n' +
        'Payment is due within thirty days.\nLate payments cost two percent\nper month.\n\n' +
        'Page two holds the appendix.',
    );
  });

  it('reads a DOCX as its paragraphs, a blank line after each', async () => {
    expect(await extractText('docs', docx)).toBe('Refund policy\n\nRefunds are paid within fourteen days.\n\nAsk support for a form.\n\n');
  });

  it('reads HTML as text: headings as Markdown headings, paragraphs apart, no scripts, styles or link targets', async () => {
    const html =
      '<!doctype html><html><head><title>Ignored</title><style>p { color: red }</style><script>alert(1)</script></head><body>' +
      '<h1>Shipping</h1><p>Parcels leave the <a href="https://example.com/warehouse">warehouse</a> daily &amp; arrive in 3&nbsp;days.</p>' +
      '<h2>Abroad</h2><p>Customs may add a week.</p><ul><li>EU</li><li>UK</li></ul>' +
      '<table><tr><th>zone</th><th>days</th></tr><tr><td>north</td><td>2</td></tr></table><img src="map.png" alt="map"></body></html>';
    expect(await extractText('docs', utf8(html))).toBe(
      '# Shipping\n\nParcels leave the warehouse daily & arrive in 3\u00a0days.\n\n## Abroad\n\nCustoms may add a week.\n\n * EU\n * UK\n\nzone    days\nnorth   2',
    );
  });

  it('decodes HTML in the charset its meta tag declares', async () => {
    const latin = Buffer.concat([Buffer.from('<html><head><meta charset="windows-1252"></head><body><p>Caf'), Buffer.from([0xe9]), Buffer.from(' cr'), Buffer.from([0xe8]), Buffer.from('me</p></body></html>')]);
    expect(await extractText('docs', latin)).toBe('Café crème');
  });

  it('keeps Markdown and text as written, line ends as \\n, a byte-order mark dropped, UTF-16 with its mark read', async () => {
    const markdown = '# Guide\n\n## Install\n\nRun `make`.\n';
    expect(await extractText('docs', utf8(markdown))).toBe(markdown);
    expect(await extractText('docs', utf8('\ufeffline one\r\nline two\r\n\r\nnext'))).toBe('line one\nline two\n\nnext');
    expect(await extractText('docs', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('wide text', 'utf16le')]))).toBe('wide text');
  });

  it('gives empty documents no text', async () => {
    expect(await extractText('docs', Buffer.alloc(0))).toBe('');
    expect(await extractText('docs', '')).toBe('');
  });
});

describe('the error a bad document gives', () => {
  it('names the model, what is wrong and what to do, for a "PDF" that is not a PDF', async () => {
    const error = await failure(utf8('%PDF-1.7\n1 0 obj << /Type /Catalog >> but nothing more'));
    expect(error.message).toMatch(/^chunker model "docs": the row's document \(\d+ bytes\) starts like a PDF \(%PDF-\) but cannot be read as one: /);
    expect(error.hint).toMatch(/store the complete PDF file/);
  });

  it('for a PDF cut short', async () => {
    const error = await failure(Buffer.from(pdf.subarray(0, Math.floor(pdf.length / 3))));
    expect(error.message).toMatch(/starts like a PDF \(%PDF-\) but cannot be read as one/);
  });

  it('for a truncated DOCX', async () => {
    const error = await failure(Buffer.from(docx.subarray(0, Math.floor(docx.length / 2))));
    expect(error.message).toMatch(/^chunker model "docs": the row's document \(\d+ bytes\) looks like a DOCX but cannot be read as one: Corrupted zip/);
    expect(error.hint).toMatch(/store the complete \.docx file/);
  });

  it('for bytes that are not UTF-8, and binary data', async () => {
    const bad = await failure(Buffer.from('caf\xe9 au lait', 'latin1'));
    expect(bad.message).toBe(`chunker model "docs": the row's document (12 bytes) is not a PDF, DOCX or HTML file, and not text either: it is not valid UTF-8 text (byte 0xe9 at offset 3)`);
    expect(bad.hint).toBe('chunkers read PDF, DOCX, HTML, Markdown and UTF-8 text');
    expect((await failure(Buffer.from([0x41, 0x42, 0x00, 0x43]))).message).toMatch(/holds a NUL byte at offset 2, so it is binary data, not text/);
    expect((await failure(Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]))).message).toBe(`chunker model "docs": the row's document (7 bytes) is a PNG image`);
  });

  it('for something that is neither bytes nor text', async () => {
    expect((await failure(42)).message).toMatch(/chunker model "docs" takes documents as bytes \(a bytea column\) or, where the operator allows it, text naming a file or URL; got a number/);
  });

  it('finds the first byte that is not UTF-8: overlong forms, surrogates and cut sequences too', () => {
    expect(invalidUtf8At(utf8('plain é € 😀'))).toBe(-1);
    expect(invalidUtf8At(Buffer.from([0x61, 0xc0, 0xaf]))).toBe(1); // overlong "/"
    expect(invalidUtf8At(Buffer.from([0x61, 0x62, 0xed, 0xa0, 0x80]))).toBe(2); // a surrogate
    expect(invalidUtf8At(Buffer.from([0x61, 0xe2, 0x82]))).toBe(1); // cut short
    expect(invalidUtf8At(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // past U+10FFFF
  });
});

describe('documents a row names by path or URL', () => {
  let dir: string;
  let outside: string;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'superduper documents '));
    outside = await mkdtemp(join(tmpdir(), 'superduper outside '));
    await writeFile(join(dir, 'guide.pdf'), pdf);
    await writeFile(join(dir, 'notes.md'), '<p>Not HTML here</p>\n\n# Notes');
    await writeFile(join(dir, 'fake.pdf'), 'just text');
    await writeFile(join(outside, 'secret.txt'), 'secret');
    await symlink(join(outside, 'secret.txt'), join(dir, 'link.txt'));
    server = createServer((request, response) => {
      if (request.url === '/page') response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<h1>Served</h1><p>From a server.</p>');
      else if (request.url === '/stream') {
        // No content-length: the size limit must hold while reading.
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.write('x'.repeat(64));
        response.end('y'.repeat(64));
      } else response.writeHead(404).end();
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.close();
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('reads files inside SUPERDUPER_DOCUMENT_DIR, by relative or absolute path, their extension a hint', async () => {
    const env = { SUPERDUPER_DOCUMENT_DIR: dir };
    expect(await extractText('docs', 'guide.pdf', env)).toMatch(/^Invoices are sent on the first day/);
    expect(await extractText('docs', join(dir, 'guide.pdf'), env)).toMatch(/Page two holds the appendix\.$/);
    // .md: read as Markdown, though it starts with a tag.
    expect(await extractText('docs', 'notes.md', env)).toBe('<p>Not HTML here</p>\n\n# Notes');
  });

  it('refuses paths outside the folder, through .., absolute paths or symbolic links', async () => {
    const env = { SUPERDUPER_DOCUMENT_DIR: dir };
    expect((await failure(join(outside, 'secret.txt'), env)).message).toMatch(/^chunker model "docs": document file ".*secret\.txt" is outside SUPERDUPER_DOCUMENT_DIR \(/);
    expect((await failure('../' + join(outside.split('/').pop()!, 'secret.txt'), env)).message).toMatch(/is outside SUPERDUPER_DOCUMENT_DIR/);
    expect((await failure('link.txt', env)).message).toMatch(/document file "link.txt" is outside SUPERDUPER_DOCUMENT_DIR/);
    expect((await failure('missing.pdf', env)).message).toBe('chunker model "docs": cannot read document file "missing.pdf": ENOENT');
    expect((await failure('fake.pdf', env)).message).toBe('chunker model "docs": document file "fake.pdf" is named like a PDF (.pdf) but it does not start with %PDF-');
  });

  it('reads no file at all without SUPERDUPER_DOCUMENT_DIR, and says what to do', async () => {
    const error = await failure(join(dir, 'guide.pdf'));
    expect(error.message).toBe(
      'chunker model "docs" takes documents as bytes (a bytea column); got a string. Sidecars read file paths only inside SUPERDUPER_DOCUMENT_DIR, and fetch URLs only with SUPERDUPER_ALLOW_DOCUMENT_URLS=1',
    );
    expect(error.hint).toMatch(/source "text"/);
    // The image variable is not the document one.
    expect((await failure('guide.pdf', { SUPERDUPER_IMAGE_DIR: dir })).message).toMatch(/only inside SUPERDUPER_DOCUMENT_DIR/);
  });

  it('refuses URLs unless SUPERDUPER_ALLOW_DOCUMENT_URLS=1', async () => {
    expect((await failure(`${base}/page`)).message).toBe('chunker model "docs": the row names a document by URL; sidecars fetch URLs only with SUPERDUPER_ALLOW_DOCUMENT_URLS=1');
    expect((await failure(`${base}/page`, { SUPERDUPER_ALLOW_IMAGE_URLS: '1' })).message).toMatch(/only with SUPERDUPER_ALLOW_DOCUMENT_URLS=1/);
  });

  it('fetches URLs where allowed, its content-type a hint', async () => {
    const env = { SUPERDUPER_ALLOW_DOCUMENT_URLS: '1' };
    expect(await extractText('docs', `${base}/page`, env)).toBe('# Served\n\nFrom a server.');
    expect((await failure(`${base}/missing.pdf`, env)).message).toMatch(/^chunker model "docs": fetching document http:\/\/127\.0\.0\.1:\d+\/missing\.pdf got HTTP 404$/);
  });

  it('stops at the size limit, for files and for responses without a content-length', async () => {
    const rules: RowSourceRules = { noun: 'document', dir, dirVariable: 'D', allowUrls: true, urlVariable: 'U', maxBytes: 100, timeoutMs: 5000 };
    await expect(bytesNamedByRow('m', 'guide.pdf', rules)).rejects.toThrow(/^m: document file "guide.pdf" is larger than 100 bytes$/);
    await expect(bytesNamedByRow('m', `${base}/stream`, rules)).rejects.toThrow(/^m: document http:.*\/stream is larger than 100 bytes$/);
    expect((await bytesNamedByRow('m', `${base}/stream`, { ...rules, maxBytes: 128 })).bytes.length).toBe(128);
    await expect(bytesNamedByRow('m', '.', rules)).rejects.toThrow(/document file "." is not a file/);
    await expect(bytesNamedByRow('m', 'x', { ...rules, dir: join(dir, 'nowhere') })).rejects.toThrow(/D \(.*nowhere\) cannot be opened: ENOENT/);
  });
});

describe('a chunker with source "document"', () => {
  it('is declared with chunkerModel and checked', () => {
    expect(chunkerModel({ name: 'c', method: 'recursive', size: 100, source: 'document' }).spec.config).toEqual({ method: 'recursive', size: 100, source: 'document' });
    // Without it the spec is as before, so existing chunkers keep their hash.
    expect(chunkerModel({ name: 'c', method: 'recursive', size: 100 }).spec.config).toEqual({ method: 'recursive', size: 100 });
    expect(() => chunkerModel({ name: 'c', method: 'recursive', size: 100, source: 'pdf' as never })).toThrow(/chunker "c": source must be "text" .* or "document" .* \(got "pdf"\)/);
    expect(checkChunkerConfig('c', { method: 'markdown', size: 10 }).source).toBe('text');
  });

  it('chunks documents of a batch, spans in the extracted text, NULL and empty ones without chunks', async () => {
    const model = await new ChunkerRuntime().load({ name: 'docs', runtime: 'chunker', output: { type: 'text', flatten: true }, config: { method: 'recursive', size: 80, source: 'document' }, artifact: null, spec_hash: 'x' });
    const html = utf8('<h1>Title</h1><p>Body text.</p>');
    const [fromPdf, fromHtml, none, empty, fromRow] = (await model.predict([Buffer.from(pdf), html, null, Buffer.alloc(0), { body: docx, title: 't' }])) as Array<Array<{ text: string; start: number; end: number }>>;
    const pdfText = await extractText('docs', pdf);
    // A chunk per paragraph: the blank lines pdfText puts between them are where the splitter cuts.
    expect(fromPdf!.map((c) => c.text)).toEqual([
      'Invoices are sent on the first day\nof every month, by email.',
      'Payment is due within thirty days.\nLate payments cost two percent\nper month.',
      'Page two holds the appendix.',
    ]);
    for (const chunk of fromPdf!) expect(pdfText.slice(chunk.start, chunk.end)).toBe(chunk.text);
    expect(fromHtml!.map((c) => c.text)).toEqual(['# Title\n\nBody text.']);
    expect(none).toEqual([]);
    expect(empty).toEqual([]);
    expect(fromRow!.map((c) => c.text)).toEqual(['Refund policy\n\nRefunds are paid within fourteen days.\n\nAsk support for a form.']);
    // One bad document fails the batch (the sidecar then runs each row alone).
    await expect(model.predict([html, utf8('%PDF-1.4 no')])).rejects.toThrow(/starts like a PDF/);
  });

  it('tells a text chunker given bytes to use source "document"', async () => {
    const model = await new ChunkerRuntime().load({ name: 'plain', runtime: 'chunker', output: { type: 'text', flatten: true }, config: { method: 'recursive', size: 60 }, artifact: null, spec_hash: 'x' });
    await expect(model.predict([Buffer.from(pdf)])).rejects.toThrow(/chunker "plain" takes text; got bytes \(a bytea column\): chunk documents with source "document"/);
  });
});
