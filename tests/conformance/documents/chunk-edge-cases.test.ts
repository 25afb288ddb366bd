/**
 * The edges of one row to many outputs: hostile names, NULL and empty
 * documents, a 5 MB document, a document edited 100 times in a row, a format
 * that puts the title and headings into what gets embedded, a model that
 * fails on one row, bad output declarations, and the write's refusal of
 * elements computed from a value the row no longer holds.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../../helpers/database.js';

let database: TestDatabase;
let db: Superduper;

beforeEach(async () => {
  database = await createTestDatabase('chunk_edges');
  db = await connectTest(database);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

describe('one row to many outputs, at the edges', () => {
  it('works on a table and key named with quotes, spaces, capitals and a semicolon', async () => {
    await q(`CREATE SCHEMA "Odd ""Schema"""`);
    await q(`CREATE TABLE "Odd ""Schema"""."My Docs; drop" ("Doc ""Id""" text PRIMARY KEY, "Body Text" text)`);
    await q(`INSERT INTO "Odd ""Schema"""."My Docs; drop" VALUES ('a''b', 'First part.\n\nSecond part, a little longer.')`);
    await db.apply(
      chunkerModel({ name: 'odd chunker', method: 'recursive', size: 30 }),
      listener({ name: 'Odd "chunks"', model: 'odd chunker', schema: 'Odd "Schema"', table: 'My Docs; drop', keys: ['Body Text'] }),
    );
    await db.start({ reconcileMs: 100 });
    await db.waitFor('Odd "chunks"', { timeoutMs: 20_000 });
    const rows = await q(`SELECT "Doc ""Id""" AS id, _position, output FROM superduper."out_Odd ""chunks""" ORDER BY _position`);
    expect(rows).toEqual([
      { id: "a'b", _position: 0, output: 'First part.' },
      { id: "a'b", _position: 1, output: 'Second part, a little longer.' },
    ]);
    await q(`DELETE FROM "Odd ""Schema"""."My Docs; drop"`);
    await db.waitFor('Odd "chunks"', { timeoutMs: 20_000 });
    expect(await q(`SELECT * FROM superduper."out_Odd ""chunks"""`)).toEqual([]);
  });

  it('gives NULL and empty documents no chunks and no failure, and a document that gains text its chunks', async () => {
    await q('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await q(`INSERT INTO docs VALUES (1, NULL), (2, ''), (3, '   '), (4, 'Some text.')`);
    await db.apply(chunkerModel({ name: 'c', method: 'recursive', size: 50 }), listener({ name: 'doc_chunks', model: 'c', table: 'docs', keys: ['body'] }));
    await db.start({ reconcileMs: 100 });
    await db.waitFor('doc_chunks', { timeoutMs: 20_000 });
    expect(await q('SELECT id, output FROM superduper.out_doc_chunks ORDER BY id')).toEqual([{ id: 4, output: 'Some text.' }]);
    expect(await q('SELECT * FROM superduper.failures')).toEqual([]);

    await q(`UPDATE docs SET body = 'Now it has text.' WHERE id = 1`);
    await q(`UPDATE docs SET body = NULL WHERE id = 4`);
    await db.waitFor('doc_chunks', { timeoutMs: 20_000 });
    expect(await q('SELECT id, output FROM superduper.out_doc_chunks ORDER BY id')).toEqual([{ id: 1, output: 'Now it has text.' }]);
  });

  it('chunks a 5 MB document, every chunk a slice of it', async () => {
    await q('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    const paragraph = 'Large documents are split like small ones, only into more chunks. '.repeat(12);
    const body = Array.from({ length: Math.ceil(5_000_000 / (paragraph.length + 2)) }, (_, i) => `${i}: ${paragraph}`).join('\n\n');
    expect(body.length).toBeGreaterThan(5_000_000);
    await q('INSERT INTO docs VALUES (1, $1)', [body]);
    await db.apply(chunkerModel({ name: 'c', method: 'recursive', size: 1000, overlap: 100 }), listener({ name: 'doc_chunks', model: 'c', table: 'docs', keys: ['body'] }));
    await db.start({ reconcileMs: 100 });
    await db.waitFor('doc_chunks', { timeoutMs: 60_000 });
    const rows = await q('SELECT _position, _start, _end, output FROM superduper.out_doc_chunks ORDER BY _position');
    expect(rows.length).toBeGreaterThan(5000);
    expect(rows.every((r) => body.slice(r._start, r._end) === r.output && r.output.length <= 1000)).toBe(true);
    expect(rows.map((r) => r._position)).toEqual(rows.map((_, i) => i));
  });

  it('ends with the chunks of the last value when a document is edited 100 times quickly', async () => {
    await q('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await q(`INSERT INTO docs VALUES (1, 'start')`);
    await db.apply(chunkerModel({ name: 'c', method: 'recursive', size: 30 }), listener({ name: 'doc_chunks', model: 'c', table: 'docs', keys: ['body'] }));
    await db.start({ reconcileMs: 100 });
    const versions = Array.from({ length: 100 }, (_, i) => Array.from({ length: (i % 7) + 1 }, (_, j) => `Edit ${i} part ${j}.`).join('\n\n'));
    for (const body of versions) await q('UPDATE docs SET body = $1 WHERE id = 1', [body]);
    await db.waitFor('doc_chunks', { timeoutMs: 30_000 });
    const last = versions.at(-1)!;
    const rows = await q('SELECT _position, output, _start, _end FROM superduper.out_doc_chunks ORDER BY _position');
    expect(rows.map((r) => r.output)).toEqual(last.split('\n\n'));
    for (const r of rows) expect(last.slice(r._start, r._end)).toBe(r.output);
  });

  it('embeds what the format declares (title, heading path, chunk) and keeps the span of the chunk itself', async () => {
    await q('CREATE TABLE pages (id int PRIMARY KEY, title text, body text)');
    const body = '# Install\n\nRun the installer.\n\n## On Debian\n\nUse apt-get.';
    await q('INSERT INTO pages VALUES (1, $1, $2)', ['Guide', body]);
    await db.apply(
      chunkerModel({ name: 'sections', method: 'markdown', size: 200, format: '{title} | {headings}\n{text}' }),
      listener({ name: 'page_chunks', model: 'sections', table: 'pages', keys: ['body', 'title'] }),
    );
    await db.start({ reconcileMs: 100 });
    await db.waitFor('page_chunks', { timeoutMs: 20_000 });
    const rows = await q('SELECT output, _headings, _start, _end FROM superduper.out_page_chunks ORDER BY _position');
    expect(rows.map((r) => r.output)).toEqual(['Guide | Install\n# Install\n\nRun the installer.', 'Guide | Install > On Debian\n## On Debian\n\nUse apt-get.']);
    expect(rows.map((r) => r._headings)).toEqual([['Install'], ['Install', 'On Debian']]);
    expect(rows.map((r) => body.slice(r._start, r._end))).toEqual(['# Install\n\nRun the installer.', '## On Debian\n\nUse apt-get.']);

    // A title change re-formats every chunk.
    await q(`UPDATE pages SET title = 'Manual' WHERE id = 1`);
    await db.waitFor('page_chunks', { timeoutMs: 20_000 });
    expect((await q('SELECT output FROM superduper.out_page_chunks ORDER BY _position')).map((r) => r.output.split(' | ')[0])).toEqual(['Manual', 'Manual']);
  });

  it('fails only the row whose list is not a list of the declared type', async () => {
    await q('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await q(`INSERT INTO docs VALUES (1, 'fine'), (2, 'bad'), (3, 'also fine')`);
    await db.apply(
      functionModel({
        name: 'words',
        output: { type: 'text', flatten: true },
        predict: (inputs: string[]) => inputs.map((text) => (text === 'bad' ? ['ok', 42] : text.split(' '))),
      }),
      listener({ name: 'doc_words', model: 'words', table: 'docs', keys: ['body'], settings: { max_attempts: 1 } }),
    );
    await db.start({ reconcileMs: 100 });
    await db.waitFor('doc_words', { timeoutMs: 20_000 }).catch(() => undefined);
    expect(await q('SELECT id, _position, output FROM superduper.out_doc_words ORDER BY id, _position')).toEqual([
      { id: 1, _position: 0, output: 'fine' },
      { id: 3, _position: 0, output: 'also' },
      { id: 3, _position: 1, output: 'fine' },
    ]);
    const failures = await q(`SELECT primary_key, error FROM superduper.failures WHERE listener = 'doc_words'`);
    expect(failures).toHaveLength(1);
    expect(failures[0].primary_key).toEqual(['2']);
    expect(failures[0].error).toMatch(/element 1 of the list: model "words" returned the number 42; its output is declared as text/);
  });

  it('refuses a bad output declaration, naming the model and what is expected', async () => {
    await expect(db.apply({ type: 'model', name: 'm1', runtime: 'chunker', output: { type: 'text', flatten: 'yes' }, config: { method: 'recursive', size: 10 } } as never)).rejects.toThrow(
      /model "m1": output "flatten" must be true or false, not "yes"/,
    );
    await expect(db.apply({ type: 'model', name: 'm2', runtime: 'chunker', output: { type: 'text', flat: true }, config: { method: 'recursive', size: 10 } } as never)).rejects.toThrow(
      /model "m2": unknown output field "flat"/,
    );
    expect(await q(`SELECT name FROM superduper.models WHERE name IN ('m1', 'm2')`)).toEqual([]);
  });

  it('writes no elements computed from a value the row no longer holds', async () => {
    await q('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await db.apply(chunkerModel({ name: 'c', method: 'recursive', size: 30 }), listener({ name: 'doc_chunks', model: 'c', table: 'docs', keys: ['body'] }));
    await q(`INSERT INTO docs VALUES (1, 'the value now')`);
    const [{ id }] = await q(`SELECT id FROM superduper._listeners WHERE name = 'doc_chunks'`);
    // As a slow sidecar would: elements of an earlier value (its hash), written after the row changed.
    const write = (hash: string) =>
      q(`SELECT superduper."_l${id}_write"(ARRAY['1'], ARRAY[NULL]::bigint[], ARRAY[$1], ARRAY[1], ARRAY[1], ARRAY[0], ARRAY['an older value'],
          ARRAY[0], ARRAY[14], ARRAY[NULL]::jsonb[], '{}', '{}', '{}', NULL, '{}', '{}') AS written`, [hash]);
    expect(await write("md5('(\"an older value\")')")).toEqual([{ written: 0 }]);
    expect(await q('SELECT * FROM superduper.out_doc_chunks')).toEqual([]);
    const [{ hash }] = await q(`SELECT md5(ROW(body)::text) AS hash FROM docs WHERE id = 1`);
    expect(await write(hash)).toEqual([{ written: 1 }]);
    expect((await q('SELECT output FROM superduper.out_doc_chunks')).map((r) => r.output)).toEqual(['an older value']);
  });
});
