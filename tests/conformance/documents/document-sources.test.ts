/**
 * Chunkers on documents (source "document"): a bytea column holding a PDF, a
 * DOCX, HTML and Markdown is chunked from each file's extracted text, a "PDF"
 * that is not one fails its row alone with an error that says what to do, and
 * a text column naming files reads them only inside SUPERDUPER_DOCUMENT_DIR.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import { extractText } from '../../../src/documents/extract-text.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { makeDocx, makePdf, utf8 } from '../../helpers/documents.js';

let database: TestDatabase;
let db: Superduper;

beforeEach(async () => {
  database = await createTestDatabase('document_sources');
  db = await connectTest(database);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

interface ChunkRow {
  id: number;
  output: string;
  _start: number;
  _end: number;
  _headings: string[];
}

const chunksOf = async (id: number): Promise<ChunkRow[]> =>
  (await q('SELECT id, output, _start, _end, _headings FROM superduper.out_doc_chunks WHERE id = $1 ORDER BY _position', [id])) as ChunkRow[];

const pdfPages = [
  [
    ['Invoices are sent on the first day', 'of every month, by email.'],
    ['Payment is due within thirty days.'],
  ],
  [['The appendix lists every tax rate.']],
];
const html = '<!doctype html><html><head><title>t</title><script>var hidden = 1</script></head><body><h1>Shipping</h1><p>Parcels leave daily &amp; arrive in three days.</p><h2>Abroad</h2><p>Customs may add a week.</p></body></html>';
const markdown = '# Guide\n\nStart here.\n\n## Install\n\nRun the installer, then restart.';

describe('chunkers on documents', () => {
  it('chunks PDF, DOCX, HTML and Markdown bytes from their text, and fails only the row whose "PDF" is not one', async () => {
    const pdf = await makePdf(pdfPages);
    const docx = await makeDocx('Refund policy', ['Refunds are paid within fourteen days.', 'Ask support for the form.']);
    const fake = utf8('%PDF-1.7\nThis was renamed from a text file and is no PDF at all.');
    await q('CREATE TABLE docs (id int PRIMARY KEY, body bytea)');
    await q('INSERT INTO docs VALUES (1, $1), (2, $2), (3, $3), (4, $4), (5, $5), (6, NULL), (7, $6)', [pdf, docx, utf8(html), utf8(markdown), fake, Buffer.alloc(0)]);
    await db.apply(
      chunkerModel({ name: 'doc_chunker', method: 'markdown', size: 200, source: 'document' }),
      listener({ name: 'doc_chunks', model: 'doc_chunker', table: 'docs', keys: ['body'], settings: { max_attempts: 1 } }),
    );
    await db.start({ reconcileMs: 100 });
    await db.waitFor('doc_chunks', { timeoutMs: 30_000 }).catch(() => undefined);

    // Each good document's chunks hold its text, and each span is a slice of the text extracted from it.
    const pdfChunks = await chunksOf(1);
    expect(pdfChunks.map((c) => c.output)).toEqual([
      'Invoices are sent on the first day\nof every month, by email.\n\nPayment is due within thirty days.\n\nThe appendix lists every tax rate.',
    ]);
    expect((await chunksOf(2)).map((c) => c.output)).toEqual(['Refund policy\n\nRefunds are paid within fourteen days.\n\nAsk support for the form.']);
    const htmlChunks = await chunksOf(3);
    expect(htmlChunks.map((c) => [c.output, c._headings])).toEqual([
      ['# Shipping\n\nParcels leave daily & arrive in three days.', ['Shipping']],
      ['## Abroad\n\nCustoms may add a week.', ['Shipping', 'Abroad']],
    ]);
    const markdownChunks = await chunksOf(4);
    expect(markdownChunks.map((c) => [c.output, c._headings])).toEqual([
      ['# Guide\n\nStart here.', ['Guide']],
      ['## Install\n\nRun the installer, then restart.', ['Guide', 'Install']],
    ]);
    for (const [chunks, source] of [[pdfChunks, pdf], [htmlChunks, utf8(html)], [markdownChunks, utf8(markdown)]] as const) {
      const text = await extractText('doc_chunker', source);
      for (const chunk of chunks) expect(text.slice(chunk._start, chunk._end)).toBe(chunk.output);
    }
    expect(markdownChunks.map((c) => markdown.slice(c._start, c._end))).toEqual(markdownChunks.map((c) => c.output));

    // The fake PDF is one failure, saying which model, what is wrong and what to do; NULL and empty are no failure.
    expect(await chunksOf(5)).toEqual([]);
    expect(await q('SELECT count(*)::int AS n FROM superduper.out_doc_chunks WHERE id IN (6, 7)')).toEqual([{ n: 0 }]);
    const failures = await q(`SELECT primary_key, error FROM superduper.failures WHERE listener = 'doc_chunks'`);
    expect(failures).toHaveLength(1);
    expect(failures[0].primary_key).toEqual(['5']);
    expect(failures[0].error).toMatch(/chunker model "doc_chunker": the row's document \(\d+ bytes\) starts like a PDF \(%PDF-\) but cannot be read as one: .+/);
    expect(failures[0].error).toMatch(/hint: store the complete PDF file/);

    // Storing a readable file in its place gives that row its chunks, and ends its failure.
    await q('UPDATE docs SET body = $1 WHERE id = 5', [utf8('A plain text file after all.')]);
    await db.waitFor('doc_chunks', { timeoutMs: 30_000 });
    expect((await chunksOf(5)).map((c) => c.output)).toEqual(['A plain text file after all.']);
    expect(await q(`SELECT * FROM superduper.failures`)).toEqual([]);
  });

  it('reads files a text column names inside SUPERDUPER_DOCUMENT_DIR, and fails the rows naming files outside it or missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'superduper documents '));
    const outside = await mkdtemp(join(tmpdir(), 'superduper outside '));
    await writeFile(join(dir, 'terms.pdf'), await makePdf(pdfPages));
    await writeFile(join(dir, 'guide.md'), markdown);
    await writeFile(join(outside, 'secret.md'), '# Secret\n\nNot for the table.');
    await q('CREATE TABLE docs (id int PRIMARY KEY, path text)');
    await q('INSERT INTO docs VALUES (1, $1), (2, $2), (3, $3), (4, $4), (5, NULL)', ['terms.pdf', join(dir, 'guide.md'), join(outside, 'secret.md'), 'missing.docx']);
    const saved = process.env.SUPERDUPER_DOCUMENT_DIR;
    try {
      // The sidecar runs in this process and reads its environment as it works.
      process.env.SUPERDUPER_DOCUMENT_DIR = dir;
      await db.apply(
        chunkerModel({ name: 'file_chunker', method: 'recursive', size: 80, source: 'document' }),
        listener({ name: 'doc_chunks', model: 'file_chunker', table: 'docs', keys: ['path'], settings: { max_attempts: 1 } }),
      );
      await db.start({ reconcileMs: 100 });
      await db.waitFor('doc_chunks', { timeoutMs: 30_000 }).catch(() => undefined);
      expect((await chunksOf(1)).map((c) => c.output)).toEqual([
        'Invoices are sent on the first day\nof every month, by email.',
        // The last paragraph of page 1 and page 2, a blank line between them.
        'Payment is due within thirty days.\n\nThe appendix lists every tax rate.',
      ]);
      // Read as written (the recursive method sees no headings).
      expect((await chunksOf(2)).map((c) => c.output)).toEqual([markdown]);
      expect(await q('SELECT count(*)::int AS n FROM superduper.out_doc_chunks WHERE id IN (3, 4, 5)')).toEqual([{ n: 0 }]);
      const failures = await q(`SELECT primary_key ->> 0 AS id, error FROM superduper.failures WHERE listener = 'doc_chunks' ORDER BY 1`);
      expect(failures.map((f) => f.id)).toEqual(['3', '4']);
      expect(failures[0].error).toMatch(/chunker model "file_chunker": document file ".*secret\.md" is outside SUPERDUPER_DOCUMENT_DIR/);
      expect(failures[1].error).toMatch(/chunker model "file_chunker": cannot read document file "missing\.docx": ENOENT/);
    } finally {
      if (saved === undefined) delete process.env.SUPERDUPER_DOCUMENT_DIR;
      else process.env.SUPERDUPER_DOCUMENT_DIR = saved;
      await rm(dir, { recursive: true, force: true });
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('reads no file a row names when the operator set no folder, and says which variable to set', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'superduper documents '));
    await writeFile(join(dir, 'guide.md'), markdown);
    await q('CREATE TABLE docs (id int PRIMARY KEY, path text)');
    await q('INSERT INTO docs VALUES (1, $1)', [join(dir, 'guide.md')]);
    const saved = process.env.SUPERDUPER_DOCUMENT_DIR;
    delete process.env.SUPERDUPER_DOCUMENT_DIR;
    try {
      await db.apply(
        chunkerModel({ name: 'file_chunker', method: 'recursive', size: 80, source: 'document' }),
        listener({ name: 'doc_chunks', model: 'file_chunker', table: 'docs', keys: ['path'], settings: { max_attempts: 1 } }),
      );
      await db.start({ reconcileMs: 100 });
      await db.waitFor('doc_chunks', { timeoutMs: 30_000 }).catch(() => undefined);
      expect(await q('SELECT * FROM superduper.out_doc_chunks')).toEqual([]);
      const failures = await q(`SELECT error FROM superduper.failures WHERE listener = 'doc_chunks'`);
      expect(failures).toHaveLength(1);
      expect(failures[0].error).toMatch(/takes documents as bytes \(a bytea column\); got a string\. Sidecars read file paths only inside SUPERDUPER_DOCUMENT_DIR/);
    } finally {
      if (saved !== undefined) process.env.SUPERDUPER_DOCUMENT_DIR = saved;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
