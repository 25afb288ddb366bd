/**
 * The gallery of templates shipped in templates/ (src/packages/gallery.ts):
 * each applied by name with its variables, end to end, offline, with the
 * project's test-sized models (tiny Hugging Face-layout folders, the default
 * embedder, the chunker, a local server speaking OpenAI's wire format as the
 * LLM), and searched or read the way its README says.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawImage } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { openaiChat } from '../../src/components/api-model.js';
import { transformersModel } from '../../src/components/transformers-model.js';
import { galleryTemplate, galleryTemplates } from '../../src/packages/gallery.js';
import { TINY_COLOURS, writeTinyClipModel, writeTinyTextModel } from '../fixtures/tiny-hf-model.js';
import { startApiServer, type ApiServer } from '../helpers/api-servers.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

const DIM = 8;
let database: TestDatabase;
let db: Superduper;
let llm: ApiServer;
const work = mkdtempSync(join(tmpdir(), 'superduper-gallery-'));
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);
const template = async (name: string) => (await galleryTemplate(name))!;

function solidPng(rgb: [number, number, number]): Promise<Buffer> {
  const pixels = new Uint8ClampedArray(16 * 16 * 3);
  for (let i = 0; i < 16 * 16; i++) pixels.set(rgb, i * 3);
  return new RawImage(pixels, 16, 16, 3).toSharp().png().toBuffer();
}

beforeAll(async () => {
  process.env.OPENAI_API_KEY = 'test-openai-key';
  llm = await startApiServer();
  llm.reply = (message) => `summary: ${message.split(' ').slice(-2).join(' ')}`;
  database = await createTestDatabase('gallery');
  db = await connectTest(database);
  await db.start({ reconcileMs: 100 });
}, 60_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
  await llm?.close();
});

describe('the template gallery', () => {
  it('lists the five templates, each with a README and its variables', async () => {
    const listed = await galleryTemplates();
    expect(listed.map((t) => t.name)).toEqual(['image-search', 'rag-documents', 'semantic-search', 'summaries-to-embeddings', 'text-classification']);
    for (const t of listed) {
      expect(t.summary.length, t.name).toBeGreaterThan(20);
      expect(t.variables.table, t.name).toMatchObject({ type: 'table' });
    }
  });

  it('semantic-search: a text column searched by meaning', async () => {
    await q(`CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'backups run nightly'), (2, 'the cafeteria menu')`);
    const [applied] = await db.applyPackage(await template('semantic-search'), { values: { table: 'notes' } });
    expect(applied).toMatchObject({ name: 'semantic_search', action: 'created' });
    await db.waitFor('semantic_search_embedding', { timeoutMs: 30_000 });
    const hits = await q(`SELECT id FROM superduper.like('semantic_search_index', 'backups run nightly', 1)`);
    expect(hits).toEqual([{ id: '1' }]);
  });

  it('image-search: images found by the colour a text names, with a CLIP-style model', async () => {
    const clip = (await writeTinyClipModel(join(work, 'clip'), { hidden: DIM })).folder;
    await db.apply(
      transformersModel({ name: 'clip_vision', path: clip, task: 'image-feature-extraction', output: { type: 'vector', dim: DIM } }),
      transformersModel({ name: 'clip_text', path: clip, task: 'feature-extraction', output: { type: 'vector', dim: DIM } }),
    );
    await q(`CREATE TABLE photos (id int PRIMARY KEY, image bytea)`);
    await q(`INSERT INTO photos VALUES (1, $1), (2, $2)`, [await solidPng(TINY_COLOURS.red!), await solidPng(TINY_COLOURS.blue!)]);
    await db.applyPackage(await template('image-search'), { values: { table: 'photos', image_model: 'clip_vision', text_model: 'clip_text' } });
    await db.waitFor('image_search_vectors', { timeoutMs: 30_000 });
    expect(await q(`SELECT id FROM superduper.like('image_search_index', 'a red square', 1)`)).toEqual([{ id: '1' }]);
    expect(await q(`SELECT id FROM superduper.like('image_search_index', 'a blue square', 1)`)).toEqual([{ id: '2' }]);
  });

  it('text-classification: labels from a Hugging Face-layout classifier', async () => {
    const classifier = (await writeTinyTextModel(join(work, 'classifier'), 'text-classification', { hidden: DIM })).folder;
    await db.apply(transformersModel({ name: 'sentiment', path: classifier, task: 'text-classification', output: { type: 'jsonb' } }));
    await q(`CREATE TABLE reviews (id int PRIMARY KEY, body text); INSERT INTO reviews VALUES (1, 'this movie is great'), (2, 'an awful and boring book')`);
    await db.applyPackage(await template('text-classification'), { values: { table: 'reviews', classifier: 'sentiment' } });
    await db.waitFor('text_classification_labels', { timeoutMs: 30_000 });
    const labels = await q(`SELECT id, output::text AS labels FROM superduper.out_text_classification_labels ORDER BY id`);
    expect(labels).toHaveLength(2);
    expect(labels[0].labels).toMatch(/POSITIVE|positive/);
    expect(labels[1].labels).toMatch(/NEGATIVE|negative/);
  });

  it('summaries-to-embeddings: an LLM summarizes, the summaries are embedded and searched', async () => {
    await db.apply(openaiChat({ name: 'summarizer', model: 'gpt-test', prompt: 'Summarize: {body}', baseUrl: `${llm.url}/v1` }));
    await q(`CREATE TABLE articles (id int PRIMARY KEY, body text); INSERT INTO articles VALUES (1, 'the council voted on budget cuts'), (2, 'the team won the cup final')`);
    const [plan] = await db.planPackage(await template('summaries-to-embeddings'), { values: { table: 'articles', llm: 'summarizer' } });
    expect(plan!.components!.find((c) => c.name === 'summaries_summary')).toMatchObject({ rows: 2, tokens_estimate: expect.any(Number) });
    await db.applyPackage(await template('summaries-to-embeddings'), { values: { table: 'articles', llm: 'summarizer' } });
    await db.waitFor('summaries_summary_embedding', { timeoutMs: 30_000 });
    expect(await q(`SELECT id, output FROM superduper.out_summaries_summary ORDER BY id`)).toEqual([
      { id: 1, output: 'summary: budget cuts' },
      { id: 2, output: 'summary: cup final' },
    ]);
    expect(await q(`SELECT id FROM superduper.like('summaries_index', 'summary: cup final', 1)`)).toEqual([{ id: '2' }]);
  });

  it('rag-documents: chunks, embeddings and hybrid search over documents, ready for rag()', async () => {
    const body = (topic: string) => Array.from({ length: 6 }, (_, i) => `Paragraph ${i} about ${topic}: ${'details of the matter '.repeat(4)}`).join('\n\n');
    await q(`CREATE TABLE manuals (id int PRIMARY KEY, body text)`);
    await q(`INSERT INTO manuals VALUES (1, $1), (2, $2)`, [body('password resets'), body('printer toner')]);
    await db.applyPackage(await template('rag-documents'), { values: { table: 'manuals', chunk_size: '200', overlap: '0' } });
    await db.waitFor('docs_rag_chunk_vectors', { timeoutMs: 30_000 });
    const chunks = await q(`SELECT count(*)::int AS n FROM superduper.out_docs_rag_chunk_vectors`);
    expect(chunks[0].n).toBeGreaterThanOrEqual(12);
    const hits = await q(`SELECT key FROM superduper.hybrid('docs_rag_index', 'printer toner', 3)`);
    expect(hits.map((h) => h.key[0])).toEqual(['2', '2', '2']);
    const [context] = await q(`SELECT prompt FROM superduper.rag_context('docs_rag_index', 'how do I change the printer toner?', 2)`);
    expect(context.prompt).toContain('printer toner');
  });
});
