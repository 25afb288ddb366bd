import { createHash } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline, RawImage, type FeatureExtractionPipeline } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import type { StoredModel } from '../../src/components/model.js';
import { transformersModel } from '../../src/components/transformers-model.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import { TINY_COLOURS, writeTinyClipModel, writeTinyTextModel, writeTinyVitModel } from '../fixtures/tiny-hf-model.js';
import { TransformersRuntime } from '../../src/models/transformers-runtime.js';
import type { ModelRecord, RuntimeContext } from '../../src/models/types.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../helpers/database.js';

// Every model here is generated (tests/fixtures/tiny-hf-model.ts): nothing is downloaded.
const DIM = 16;
let work: string;
let folders: { text: string; classifier: string; clip: string };
let database: TestDatabase;
let db: Superduper;
const runtime = new TransformersRuntime();
/** runtime.load calls per model name, in the sidecar started by this file. */
const loads = new Map<string, number>();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'superduper-transformers-test-'));
  // The runtime reads it at load time: this file's model folders stay in work.
  process.env.SUPERDUPER_CACHE_DIR = join(work, 'cache');
  delete process.env.SUPERDUPER_ALLOW_REMOTE_MODELS;
  folders = {
    text: (await writeTinyTextModel(join(work, 'text'), 'feature-extraction', { hidden: DIM })).folder,
    classifier: (await writeTinyTextModel(join(work, 'classifier'), 'text-classification', { hidden: DIM })).folder,
    clip: (await writeTinyClipModel(join(work, 'clip'), { hidden: DIM })).folder,
  };
  database = await createTestDatabase('transformers');
  db = await connectTest(database);
  db.models.addRuntime({
    name: 'transformers',
    load(model, context) {
      loads.set(model.name, (loads.get(model.name) ?? 0) + 1);
      return runtime.load(model, context);
    },
  });
  await db.start({ reconcileMs: 200 });
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * The record a sidecar would read for this component, with its files held in
 * memory instead of the database: for loading the runtime directly. As apply()
 * does, the component's files/<path> entries become config.files[<path>].
 */
async function inMemory(component: StoredModel): Promise<{ record: ModelRecord; context: RuntimeContext & { fetched: string[] } }> {
  const artifacts = new Map<string, Uint8Array>();
  const files: Record<string, string> = {};
  for (const [key, load] of Object.entries(component.files ?? {})) {
    const bytes = await load();
    const sha = createHash('sha256').update(bytes).digest('hex');
    artifacts.set(sha, bytes);
    files[key.replace(/^files\//, '')] = sha;
  }
  const spec = component.spec as { output: ModelRecord['output']; config: Record<string, unknown> };
  const config = component.files ? { ...spec.config, files } : spec.config;
  const record: ModelRecord = {
    name: component.name,
    runtime: component.runtime,
    output: spec.output,
    config,
    artifact: null,
    spec_hash: createHash('sha256').update(JSON.stringify({ name: component.name, config })).digest('hex'),
  };
  const fetched: string[] = [];
  const context = {
    fetched,
    async fetchArtifact(sha: string) {
      fetched.push(sha);
      const bytes = artifacts.get(sha);
      if (!bytes) throw new Error(`artifact ${sha} is not stored`);
      return bytes;
    },
  };
  return { record, context };
}

async function referenceEmbeddings(texts: string[]): Promise<number[][]> {
  const reference = (await pipeline('feature-extraction', folders.text, { local_files_only: true })) as FeatureExtractionPipeline;
  try {
    return (await reference(texts, { pooling: 'mean', normalize: true })).tolist() as number[][];
  } finally {
    await reference.dispose();
  }
}

const norm = (vector: number[]) => Math.hypot(...vector);
const parseVector = (text: string) => JSON.parse(text) as number[];

function solidPng(rgb: [number, number, number]): Promise<Buffer> {
  const pixels = new Uint8ClampedArray(16 * 16 * 3);
  for (let i = 0; i < 16 * 16; i++) pixels.set(rgb, i * 3);
  return new RawImage(pixels, 16, 16, 3).toSharp().png().toBuffer();
}

const texts = ['this movie is great', 'a terrible and boring book', 'the cat and the dog', 'Movies of a RED car, unknownword'];

describe('the runtime, loaded directly', () => {
  it('gives what the transformers.js pipeline gives: mean pooled, unit length', async () => {
    const { record, context } = await inMemory(
      transformersModel({ name: 'direct_text', path: folders.text, task: 'feature-extraction', output: { type: 'vector', dim: DIM } }),
    );
    const model = await runtime.load(record, context);
    try {
      const vectors = (await model.predict(texts)) as number[][];
      const expected = await referenceEmbeddings(texts);
      expect(vectors).toHaveLength(texts.length);
      vectors.forEach((vector, i) => {
        expect(vector).toHaveLength(DIM);
        expect(norm(vector)).toBeCloseTo(1, 5);
        vector.forEach((value, d) => expect(value).toBeCloseTo(expected[i]![d]!, 5));
      });
      // Different words, different vectors.
      expect(vectors[0]).not.toEqual(vectors[1]);
    } finally {
      await model.close?.();
    }
  });

  it('rebuilds the folder once: a second load fetches nothing, a damaged file is fetched again', async () => {
    const { record, context } = await inMemory(
      transformersModel({ name: 'cached_text', path: folders.text, task: 'feature-extraction', pooling: 'cls', output: { type: 'vector', dim: DIM } }),
    );
    const first = await runtime.load(record, context);
    await first.close?.();
    const written = Object.keys(record.config.files as object).length;
    expect(context.fetched).toHaveLength(written);

    const second = await runtime.load(record, context);
    await second.close?.();
    expect(context.fetched).toHaveLength(written);

    await writeFile(join(process.env.SUPERDUPER_CACHE_DIR!, record.spec_hash, 'tokenizer.json'), '{}');
    const third = await runtime.load(record, context);
    try {
      expect(context.fetched).toHaveLength(written + 1);
      const [vector] = (await third.predict(['great'])) as number[][];
      expect(norm(vector!)).toBeCloseTo(1, 5);
    } finally {
      await third.close?.();
    }
  });

  it('takes an optimum export as it is: model.onnx beside config.json is stored as onnx/model.onnx', async () => {
    const flat = join(work, 'optimum-layout');
    await writeTinyTextModel(flat, 'feature-extraction', { hidden: DIM });
    await rename(join(flat, 'onnx', 'model.onnx'), join(flat, 'model.onnx'));
    await rm(join(flat, 'onnx'), { recursive: true });
    await writeFile(join(flat, 'model.safetensors'), 'weights transformers.js never reads');
    const { record, context } = await inMemory(
      transformersModel({ name: 'optimum_text', path: flat, task: 'feature-extraction', output: { type: 'vector', dim: DIM } }),
    );
    expect(Object.keys(record.config.files as object)).toEqual(['config.json', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json']);
    const model = await runtime.load(record, context);
    try {
      const [vector] = (await model.predict([texts[0]])) as number[][];
      (await referenceEmbeddings([texts[0]!]))[0]!.forEach((value, d) => expect(vector![d]).toBeCloseTo(value, 5));
    } finally {
      await model.close?.();
    }
  });

  it('classifies by the words: {label, score}, or every label with top_k "all"', async () => {
    const { record, context } = await inMemory(
      transformersModel({ name: 'direct_sentiment', path: folders.classifier, task: 'text-classification', topK: 'all', output: { type: 'jsonb' } }),
    );
    const model = await runtime.load(record, context);
    try {
      const [great, awful] = (await model.predict(['What a great film', 'an awful, boring day'])) as Array<{ label: string; score: number; scores: Record<string, number> }>;
      expect(great).toMatchObject({ label: 'positive' });
      expect(great!.score).toBeGreaterThan(0.9);
      expect(awful).toMatchObject({ label: 'negative' });
      expect(Object.keys(awful!.scores).sort()).toEqual(['negative', 'positive']);
      expect(awful!.scores.negative! + awful!.scores.positive!).toBeCloseTo(1, 5);
    } finally {
      await model.close?.();
    }
  });
});

describe('clear errors', () => {
  it('a folder without the files the task needs', async () => {
    await rm(join(work, 'broken'), { recursive: true, force: true });
    await writeTinyTextModel(join(work, 'broken'), 'feature-extraction', { hidden: DIM });
    await rm(join(work, 'broken', 'tokenizer.json'));
    const { record, context } = await inMemory(
      transformersModel({ name: 'no_tokenizer', path: join(work, 'broken'), task: 'feature-extraction', output: { type: 'vector', dim: DIM } }),
    );
    await expect(runtime.load(record, context)).rejects.toThrow(/transformers model "no_tokenizer": the stored folder lacks tokenizer\.json/);
    expect(() => transformersModel({ name: 'nowhere', path: join(work, 'does-not-exist'), task: 'feature-extraction', output: { type: 'jsonb' } })).toThrow(
      /transformers model "nowhere": cannot read the model folder/,
    );
  });

  it('an unknown task, and a file path leaving the model folder', async () => {
    const { record, context } = await inMemory(
      transformersModel({ name: 'bad_task', path: folders.text, task: 'summarization' as 'feature-extraction', output: { type: 'jsonb' } }),
    );
    await expect(runtime.load(record, context)).rejects.toThrow(
      /transformers model "bad_task": unknown task "summarization"; use one of feature-extraction, text-classification, image-feature-extraction/,
    );
    const files = record.config.files as Record<string, string>;
    const escaping = { ...record, config: { task: 'feature-extraction', files: { ...files, '../outside.json': files['config.json']! } } };
    await expect(runtime.load(escaping, context)).rejects.toThrow(/file path "\.\.\/outside\.json" must be relative to the model folder/);
  });

  it('a hub model id while remote models are off: the row fails with what to do', async () => {
    await database.sql.query(`CREATE TABLE remote_docs (id int PRIMARY KEY, body text); INSERT INTO remote_docs VALUES (1, 'hello')`);
    await db.apply(
      transformersModel({ name: 'hub_minilm', modelId: 'Xenova/all-MiniLM-L6-v2', task: 'feature-extraction', output: { type: 'vector', dim: 384 } }),
      listener({ name: 'remote_vectors', model: 'hub_minilm', table: 'remote_docs', keys: ['body'], settings: { max_attempts: 1 } }),
    );
    const failure = await eventually(async () => (await db.failures('remote_vectors'))[0], 20_000, 'the failure');
    expect(failure!.error).toMatch(/names the hub model "Xenova\/all-MiniLM-L6-v2", but remote models are off/);
    expect(failure!.error).toMatch(/SUPERDUPER_ALLOW_REMOTE_MODELS=1/);
    await db.remove('remote_vectors');
  });
});

describe('end to end: listeners on a real table', () => {
  const reviews: Array<[number, string]> = [
    [1, 'this movie is great'],
    [2, 'a terrible and boring book'],
    [3, 'I love this wonderful story'],
    [4, 'the film was awful'],
  ];
  /** The text model's folder for these listeners: a test removes it (folders.text is the reference for the others). */
  let textFolder: string;

  beforeAll(async () => {
    textFolder = (await writeTinyTextModel(join(work, 'text for listeners'), 'feature-extraction', { hidden: DIM })).folder;
    await database.sql.query(`CREATE TABLE reviews (id int PRIMARY KEY, body text NOT NULL)`);
    for (const [id, body] of reviews) await database.sql.query('INSERT INTO reviews VALUES ($1, $2)', [id, body]);
    await db.apply(
      transformersModel({ name: 'tiny_text', path: textFolder, task: 'feature-extraction', output: { type: 'vector', dim: DIM } }),
      listener({ name: 'review_vectors', model: 'tiny_text', table: 'reviews', keys: ['body'] }),
      transformersModel({ name: 'tiny_sentiment', path: folders.classifier, task: 'text-classification', output: { type: 'jsonb' } }),
      listener({ name: 'review_sentiment', model: 'tiny_sentiment', table: 'reviews', keys: ['body'] }),
    );
    await db.waitUntilIdle();
  });

  it('stores the model folder under config.files', async () => {
    const { rows } = await database.sql.query(`SELECT config FROM superduper._models WHERE name = 'tiny_text'`);
    expect(Object.keys(rows[0].config.files).sort()).toEqual(['config.json', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json']);
  });

  /** Two reviews written after the backfill (by the first test that needs them). */
  async function laterReviews(): Promise<void> {
    await database.sql.query(`INSERT INTO reviews VALUES (5, 'a great red car'), (6, 'the dog is sad') ON CONFLICT (id) DO NOTHING`);
    await db.waitUntilIdle();
  }

  it('writes the embeddings the pipeline gives, loading the model once', async () => {
    await laterReviews();
    const { rows } = await database.sql.query<{ body: string; output: string }>(
      `SELECT r.body, o.output::text AS output FROM reviews r JOIN superduper.out_review_vectors o USING (id) ORDER BY r.id`,
    );
    expect(rows).toHaveLength(6);
    const expected = await referenceEmbeddings(rows.map((row) => row.body));
    rows.forEach((row, i) => {
      const vector = parseVector(row.output);
      expect(vector).toHaveLength(DIM);
      expect(norm(vector)).toBeCloseTo(1, 4);
      vector.forEach((value, d) => expect(value).toBeCloseTo(expected[i]![d]!, 5));
    });
    expect(loads.get('tiny_text')).toBe(1);
    expect(loads.get('tiny_sentiment')).toBe(1);
    expect(await db.failures('review_vectors')).toEqual([]);
  });

  it('writes classification labels and scores as jsonb', async () => {
    await laterReviews();
    const { rows } = await database.sql.query<{ id: number; label: string; score: number }>(
      `SELECT id, output ->> 'label' AS label, (output ->> 'score')::float8 AS score
       FROM superduper.out_review_sentiment WHERE jsonb_typeof(output) = 'object' ORDER BY id`,
    );
    expect(rows.map((row) => [row.id, row.label])).toEqual([
      [1, 'positive'],
      [2, 'negative'],
      [3, 'positive'],
      [4, 'negative'],
      [5, 'positive'],
      [6, 'negative'],
    ]);
    for (const row of rows) expect(row.score).toBeGreaterThan(0.9);
  });

  it('another sidecar loads the model from the database alone', async () => {
    // Neither the original folder nor any local copy is left.
    await rm(textFolder, { recursive: true, force: true });
    await rm(process.env.SUPERDUPER_CACHE_DIR!, { recursive: true, force: true });
    const other = await connectTest(database);
    try {
      const { rows } = await database.sql.query<ModelRecord>(
        `SELECT name, runtime, output, config, artifact, spec_hash FROM superduper._models WHERE name = 'tiny_text'`,
      );
      const model = await other.models.get(rows[0]!);
      const [vector] = (await model.predict(['this movie is great'])) as number[][];
      const stored = await database.sql.query<{ output: string }>(`SELECT output::text AS output FROM superduper.out_review_vectors WHERE id = 1`);
      parseVector(stored.rows[0]!.output).forEach((value, d) => expect(value).toBeCloseTo(vector![d]!, 5));
    } finally {
      await other.close();
    }
  });
});

describe('images: a CLIP-style model, images searched with text', () => {
  beforeAll(async () => {
    await database.sql.query(`CREATE TABLE photos (id int PRIMARY KEY, colour text NOT NULL, image bytea)`);
    const colours = Object.entries(TINY_COLOURS);
    for (const [i, [name, rgb]] of colours.entries()) {
      await database.sql.query('INSERT INTO photos VALUES ($1, $2, $3)', [i + 1, name, await solidPng(rgb)]);
    }
    await database.sql.query(`INSERT INTO photos VALUES (100, 'none', 'not an image at all'::bytea)`);
    // One folder, two models: its vision tower embeds the rows, its text tower the queries.
    await db.apply(
      transformersModel({ name: 'clip_vision', path: folders.clip, task: 'image-feature-extraction', output: { type: 'vector', dim: DIM } }),
      transformersModel({ name: 'clip_text', path: folders.clip, task: 'feature-extraction', output: { type: 'vector', dim: DIM } }),
      listener({ name: 'photo_vectors', model: 'clip_vision', table: 'photos', keys: ['image'], settings: { max_attempts: 1 } }),
      vectorIndex({ name: 'photo_index', listener: 'photo_vectors', queryModel: 'clip_text' }),
    );
    await db.waitUntilIdle();
  });

  it('embeds bytea images as unit vectors; an undecodable one fails alone', async () => {
    const { rows } = await database.sql.query<{ output: string }>(`SELECT output::text AS output FROM superduper.out_photo_vectors`);
    expect(rows).toHaveLength(Object.keys(TINY_COLOURS).length);
    for (const row of rows) expect(norm(parseVector(row.output))).toBeCloseTo(1, 4);
    const failures = await db.failures('photo_vectors');
    expect(failures.map((f) => f.primary_key)).toEqual([['100']]);
    expect(failures[0]!.error).toMatch(/transformers model "clip_vision": the bytes are not an image it can decode/);
  });

  it('superduper.like finds the image of the colour a text names', async () => {
    for (const colour of Object.keys(TINY_COLOURS)) {
      const { rows } = await database.sql.query(
        `SELECT p.colour FROM superduper.like('photo_index', $1, 1) AS l JOIN photos p ON p.id = l.id::int`,
        [`a ${colour} square`],
      );
      expect(rows).toEqual([{ colour }]);
    }
  });

  it('the two models share the stored files', async () => {
    const { rows } = await database.sql.query(`SELECT name, config -> 'files' AS files FROM superduper._models WHERE name LIKE 'clip_%' ORDER BY name`);
    expect(rows[0].files).toEqual(rows[1].files);
    expect(Object.keys(rows[0].files)).toContain('onnx/text_model.onnx');
  });

  it('pools a ViT-style model (a vector per patch) like tokens: mean or the first', async () => {
    const vit = await writeTinyVitModel(join(work, 'vit'), { hidden: DIM });
    const images = [await solidPng(TINY_COLOURS.red!), await solidPng(TINY_COLOURS.blue!)];
    const clip = await inMemory(transformersModel({ name: 'clip_check', path: folders.clip, task: 'image-feature-extraction', output: { type: 'vector', dim: DIM } }));
    const clipModel = await runtime.load(clip.record, clip.context);
    const expected = (await clipModel.predict(images)) as number[][];
    await clipModel.close?.();
    for (const pooling of ['mean', 'cls'] as const) {
      const { record, context } = await inMemory(
        transformersModel({ name: `vit_${pooling}`, path: vit.folder, task: 'image-feature-extraction', pooling, output: { type: 'vector', dim: DIM } }),
      );
      const model = await runtime.load(record, context);
      try {
        const vectors = (await model.predict(images)) as number[][];
        // A one-colour image has the same vector at every pixel, and the CLIP-style model's embedding.
        vectors.forEach((vector, i) => vector.forEach((value, d) => expect(value).toBeCloseTo(expected[i]![d]!, 5)));
      } finally {
        await model.close?.();
      }
    }
  });

  it('refuses text where an image belongs', async () => {
    const { rows } = await database.sql.query<ModelRecord>(
      `SELECT name, runtime, output, config, artifact, spec_hash FROM superduper._models WHERE name = 'clip_vision'`,
    );
    const model = await db.models.get(rows[0]!);
    await expect(model.predict(['/etc/passwd'])).rejects.toThrow(/takes images as bytes \(a bytea column\); got a string/);
    await expect(model.predict(['http://127.0.0.1:9/red.png'])).rejects.toThrow(/sidecars fetch URLs only with SUPERDUPER_ALLOW_IMAGE_URLS=1/);
  });

  it('reads file paths inside SUPERDUPER_IMAGE_DIR and fetches URLs with SUPERDUPER_ALLOW_IMAGE_URLS=1, where the operator allows it', async () => {
    const { rows } = await database.sql.query<ModelRecord>(
      `SELECT name, runtime, output, config, artifact, spec_hash FROM superduper._models WHERE name = 'clip_vision'`,
    );
    const model = await db.models.get(rows[0]!);
    const red = await solidPng(TINY_COLOURS.red!);
    const [fromBytes] = (await model.predict([red])) as number[][];
    const dir = await mkdtemp(join(tmpdir(), 'superduper images '));
    await writeFile(join(dir, 'red.png'), red);
    const server = createServer((request, response) => {
      if (request.url === '/red.png') response.writeHead(200, { 'content-type': 'image/png' }).end(red);
      else response.writeHead(404).end();
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const saved = { dir: process.env.SUPERDUPER_IMAGE_DIR, urls: process.env.SUPERDUPER_ALLOW_IMAGE_URLS };
    try {
      process.env.SUPERDUPER_IMAGE_DIR = dir;
      process.env.SUPERDUPER_ALLOW_IMAGE_URLS = '1';
      const [fromPath, fromAbsolute, fromUrl] = (await model.predict(['red.png', join(dir, 'red.png'), `${base}/red.png`])) as number[][];
      expect(fromPath).toEqual(fromBytes);
      expect(fromAbsolute).toEqual(fromBytes);
      expect(fromUrl).toEqual(fromBytes);
      await expect(model.predict(['../etc/passwd'])).rejects.toThrow(/outside SUPERDUPER_IMAGE_DIR|cannot read image file/);
      await expect(model.predict(['/etc/passwd'])).rejects.toThrow(/image file "\/etc\/passwd" is outside SUPERDUPER_IMAGE_DIR/);
      await expect(model.predict([`${base}/missing.png`])).rejects.toThrow(/fetching image .*\/missing.png got HTTP 404/);
    } finally {
      process.env.SUPERDUPER_IMAGE_DIR = saved.dir;
      process.env.SUPERDUPER_ALLOW_IMAGE_URLS = saved.urls;
      if (saved.dir === undefined) delete process.env.SUPERDUPER_IMAGE_DIR;
      if (saved.urls === undefined) delete process.env.SUPERDUPER_ALLOW_IMAGE_URLS;
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
