/**
 * Chunkers that count tokens: config "unit": "tokens" with "tokenizer" naming
 * a transformers model applied with its folder. Every chunk holds at most
 * `size` tokens as that model's own tokenizer counts its text; the tokenizer's
 * files are pinned in the chunker's spec at apply time (so a changed tokenizer
 * is a new chunker version), and a bad tokenizer is refused at apply time.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { chunkerModel } from '../../../src/components/model.js';
import { transformersModel } from '../../../src/components/transformers-model.js';
import { writeTinyTextModel } from '../../fixtures/tiny-hf-model.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../../helpers/database.js';

const DIM = 16;
const SIZE = 12;
const OVERLAP = 4;
let work: string;
let folder: string;
let database: TestDatabase;
let db: Superduper;
let countTokens: (text: string) => number;

const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'superduper-token-chunks-'));
  process.env.SUPERDUPER_CACHE_DIR = join(work, 'cache');
  folder = (await writeTinyTextModel(join(work, 'embedder'), 'feature-extraction', { hidden: DIM })).folder;
  // The reference count: the same tokenizer, loaded from the original folder.
  const tokenizer = await AutoTokenizer.from_pretrained(folder, { local_files_only: true });
  countTokens = (text) => tokenizer.encode(text, { add_special_tokens: false }).length;
  database = await createTestDatabase('token_chunks');
  db = await connectTest(database);
  await db.start({ reconcileMs: 100 });
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * Words the tiny tokenizer knows, words it splits ("movies" is movie + ##s)
 * and punctuation and unknown words (each its own token): characters and
 * tokens disagree, so a character budget would not give these chunks.
 */
const DOCUMENT = [
  'the movies of this day are great, and the books are good.',
  'i love the cat; the dog is sad but the house is happy.\nthe red car and the blue car are very good cars.',
  'an excellent film is not a boring story: it is a wonderful picture of a yellow square and a green circle.',
  'unknownwordsarecountedastokenstoo and so are commas, colons: and full stops.',
].join('\n\n');

describe('a chunker counting with the embedding model\'s tokenizer', () => {
  beforeAll(async () => {
    await q('CREATE TABLE articles (id int PRIMARY KEY, body text)');
    await q('INSERT INTO articles VALUES (1, $1), (2, $2), (3, NULL)', [DOCUMENT, 'the cat']);
    await db.apply(
      transformersModel({ name: 'tiny_embedder', path: folder, task: 'feature-extraction', output: { type: 'vector', dim: DIM } }),
      chunkerModel({ name: 'token_chunks', method: 'recursive', size: SIZE, overlap: OVERLAP, unit: 'tokens', tokenizer: 'tiny_embedder' }),
      listener({ name: 'article_chunks', model: 'token_chunks', table: 'articles', keys: ['body'] }),
      listener({ name: 'chunk_vectors', model: 'tiny_embedder', schema: 'superduper', table: 'out_article_chunks', keys: ['output'] }),
    );
    await db.waitFor('chunk_vectors', { timeoutMs: 30_000 });
  });

  it('keeps every chunk within size tokens as the tokenizer counts it, each a slice of the text', async () => {
    const rows = (await q('SELECT id, _position, output, _start, _end FROM superduper.out_article_chunks ORDER BY id, _position')) as Array<{
      id: number;
      output: string;
      _start: number;
      _end: number;
    }>;
    const chunks = rows.filter((row) => row.id === 1);
    expect(countTokens(DOCUMENT)).toBeGreaterThan(4 * SIZE);
    expect(chunks.length).toBeGreaterThan(4);
    for (const chunk of chunks) {
      expect(DOCUMENT.slice(chunk._start, chunk._end)).toBe(chunk.output);
      expect(countTokens(chunk.output), JSON.stringify(chunk.output)).toBeLessThanOrEqual(SIZE);
    }
    // Not a character budget in disguise: chunks are far longer than SIZE characters.
    expect(Math.max(...chunks.map((c) => c.output.length))).toBeGreaterThan(3 * SIZE);
    // Nothing of the text left out.
    let covered = 0;
    for (const chunk of chunks) {
      expect(DOCUMENT.slice(covered, chunk._start).trim()).toBe('');
      covered = Math.max(covered, chunk._end);
    }
    expect(DOCUMENT.slice(covered).trim()).toBe('');
    expect(rows.filter((row) => row.id === 2).map((row) => row.output)).toEqual(['the cat']);
    expect(rows.some((row) => row.id === 3)).toBe(false);
    // The chained embedding listener embedded every chunk.
    const [vectors] = (await q('SELECT count(*)::int AS n FROM superduper.out_chunk_vectors')) as Array<{ n: number }>;
    expect(vectors!.n).toBe(rows.length);
  });

  it('repeats up to overlap tokens of a chunk at the start of the next', async () => {
    const chunks = (await q('SELECT output, _start, _end FROM superduper.out_article_chunks WHERE id = 1 ORDER BY _position')) as Array<{
      output: string;
      _start: number;
      _end: number;
    }>;
    let overlapping = 0;
    for (let i = 1; i < chunks.length; i++) {
      const shared = chunks[i - 1]!._end - chunks[i]!._start;
      if (shared <= 0) continue;
      overlapping++;
      expect(countTokens(DOCUMENT.slice(chunks[i]!._start, chunks[i - 1]!._end))).toBeLessThanOrEqual(OVERLAP);
    }
    // Chunks that begin a paragraph share nothing; inside paragraphs they do.
    expect(overlapping).toBeGreaterThan(1);
  });

  it("pins the embedding model's own tokenizer files in the chunker's config", async () => {
    const [embedder, chunker] = (await q(`SELECT name, config FROM superduper._models WHERE name IN ('tiny_embedder', 'token_chunks') ORDER BY name`)) as Array<{
      config: { files: Record<string, string>; tokenizer_files: Record<string, string> };
    }>;
    expect(chunker!.config.tokenizer_files).toEqual({
      'tokenizer.json': embedder!.config.files['tokenizer.json'],
      'tokenizer_config.json': embedder!.config.files['tokenizer_config.json'],
    });
    // Applying the same chunker again changes nothing.
    const [again] = await db.apply(chunkerModel({ name: 'token_chunks', method: 'recursive', size: SIZE, overlap: OVERLAP, unit: 'tokens', tokenizer: 'tiny_embedder' }));
    expect(again).toMatchObject({ action: 'unchanged', version: 1 });
  });

  it('follows the model when its tokenizer changes, and keeps the model while a chunker counts with it', async () => {
    // The same model with another tokenizer_config.json: the chunker becomes a new version.
    const changed = join(work, 'embedder v2');
    await writeTinyTextModel(changed, 'feature-extraction', { hidden: DIM });
    const config = JSON.parse(await readFile(join(changed, 'tokenizer_config.json'), 'utf8'));
    await writeFile(join(changed, 'tokenizer_config.json'), JSON.stringify({ ...config, model_max_length: 32 }));
    await db.apply(transformersModel({ name: 'tiny_embedder', path: changed, task: 'feature-extraction', output: { type: 'vector', dim: DIM } }));
    const [chunker] = (await q(`SELECT version FROM superduper._models WHERE name = 'token_chunks'`)) as Array<{ version: number }>;
    expect(chunker!.version).toBe(2);
    await db.waitFor('chunk_vectors', { timeoutMs: 30_000 });
    const [rebuilt] = (await q('SELECT count(*)::int AS n FROM superduper.out_article_chunks WHERE id = 1')) as Array<{ n: number }>;
    expect(rebuilt!.n).toBeGreaterThan(4);

    await expect(q(`SELECT superduper.remove('tiny_embedder')`)).rejects.toThrow(/model "tiny_embedder" is used by .*token_chunks/);
  });
});

describe('a bad tokenizer is refused when the chunker is applied', () => {
  const apply = (config: Record<string, unknown>) =>
    q(`SELECT superduper.apply($1::jsonb)`, [JSON.stringify({ type: 'model', name: 'bad_chunks', runtime: 'chunker', output: { type: 'jsonb' }, config })]);

  it('unit tokens without a tokenizer', async () => {
    await expect(apply({ method: 'recursive', size: 100, unit: 'tokens' })).rejects.toThrow(
      /chunker "bad_chunks": unit "tokens" counts with a model's tokenizer, but config.tokenizer names no model/,
    );
    expect(() => chunkerModel({ name: 'bad_chunks', method: 'recursive', size: 100, unit: 'tokens' })).toThrow(
      /chunker "bad_chunks": unit "tokens" counts with an embedding model's tokenizer, but no tokenizer is named/,
    );
  });

  it('a tokenizer without unit tokens', async () => {
    await expect(apply({ method: 'recursive', size: 100, tokenizer: 'tiny_embedder' })).rejects.toThrow(
      /chunker "bad_chunks": tokenizer is used only with unit "tokens" \(unit is "characters"\)/,
    );
  });

  it('a model that does not exist, with the models that would do', async () => {
    const error = await apply({ method: 'recursive', size: 100, unit: 'tokens', tokenizer: 'no_such_model' }).catch((e) => e);
    expect(error.message).toMatch(/chunker "bad_chunks": config.tokenizer names model "no_such_model", which does not exist/);
    expect(error.hint).toMatch(/Apply that model first.*Models with a tokenizer: 'tiny_embedder'/);
  });

  it('a model that stores no tokenizer', async () => {
    await db.apply(transformersModel({ name: 'hub_model', modelId: 'Xenova/all-MiniLM-L6-v2', task: 'feature-extraction', output: { type: 'vector', dim: 384 } }));
    const error = await apply({ method: 'recursive', size: 100, unit: 'tokens', tokenizer: 'hub_model' }).catch((e) => e);
    expect(error.message).toMatch(/chunker "bad_chunks": model "hub_model" has no stored tokenizer \(its stored files lack tokenizer.json and tokenizer_config.json\)/);
    expect(error.hint).toMatch(/transformersModel\(\{ path \}\)/);
    expect(await q(`SELECT name FROM superduper._models WHERE name = 'bad_chunks'`)).toEqual([]);
  });
});
