import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../src/client.js';
import { listener } from '../../src/components/listener.js';
import { vectorIndex } from '../../src/components/vector-index.js';
import { TextEmbedderRuntime } from '../../src/models/text-embedder-runtime.js';
import type { LoadedModel } from '../../src/models/types.js';
import { connectTest, createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * Paraphrase pairs written for this test: each query should find its partner
 * among all partners. Different words, same meaning; several topics.
 */
export const paraphrases: Array<[string, string]> = [
  ['How do I reset my password?', 'I forgot my login credentials and need new ones'],
  ['The stock market crashed today', 'Share prices fell sharply on the exchange'],
  ['My cat sleeps all day long', 'The kitten naps on the couch from morning to night'],
  ['What is the weather like tomorrow?', 'Will it rain or be sunny the next day?'],
  ['I would like to book a flight to Paris', 'Please reserve a plane ticket to France'],
  ['The restaurant serves excellent pasta', 'That Italian place makes wonderful spaghetti'],
  ['He is learning to play the guitar', 'He takes lessons on a stringed instrument'],
  ['The car will not start in the morning', 'My vehicle engine fails to turn over early in the day'],
  ['Where is the nearest hospital?', 'I need to find a doctor or emergency room close by'],
  ['The children are playing football in the park', 'Kids kick a soccer ball on the green'],
  ['Please send me the invoice', 'Could you email the bill for payment'],
  ['The movie was boring and too long', 'That film dragged on and was dull'],
  ['How much does this laptop cost?', 'What is the price of the notebook computer?'],
  ['She is baking a chocolate cake', 'She makes a cocoa dessert in the oven'],
  ['The train was delayed by an hour', 'The railway service ran sixty minutes late'],
  ['I have a terrible headache', 'My head hurts a lot'],
  ['The company hired fifty new employees', 'The firm took on dozens of new staff'],
  ['Turn off the lights before leaving', 'Switch off the lamps when you go out'],
  ['The museum opens at nine', 'The gallery doors open at 9 am'],
  ['We are moving to a new apartment', 'We will relocate to another flat'],
  ['The database query is very slow', 'The SQL request takes a long time to run'],
  ['He won the chess tournament', 'He was the champion of the chess competition'],
  ['My phone battery dies quickly', 'The mobile runs out of charge fast'],
  ['The river flooded the village', 'Water from the stream overflowed into the town'],
  ['I need a vacation', 'I want to take some time off and travel'],
  ['The dog barked at the mailman', 'The puppy was noisy when the postman came'],
  ['Prices keep going up every month', 'Inflation makes things more expensive over time'],
  ['The meeting has been cancelled', 'The appointment was called off'],
  ['She speaks three languages fluently', 'She is multilingual and fluent in several tongues'],
  ['Water the plants twice a week', 'Give the flowers water every few days'],
];

let embedder: LoadedModel;

beforeAll(async () => {
  embedder = await new TextEmbedderRuntime().load({
    name: 'default-embedder',
    runtime: 'text-embedder',
    output: { type: 'vector', dim: 512 },
    config: {},
    artifact: null,
    spec_hash: 'test',
  });
});

const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));

describe('the default text embedder (offline, from npm)', () => {
  it('is semantic: a kitten on the sofa is nearer a cat on the couch than falling stocks', async () => {
    const [kitten, cat, stocks] = (await embedder.predict(['a kitten sleeps on the sofa', 'a cat naps on the couch', 'stock markets fell sharply'])) as number[][];
    expect(kitten).toHaveLength(512);
    expect(cosine(kitten!, cat!)).toBeGreaterThan(cosine(kitten!, stocks!) + 0.3);
  });

  it('finds paraphrases: recall@1 over 30 pairs written for this test', async () => {
    const queries = (await embedder.predict(paraphrases.map(([q]) => q))) as number[][];
    const targets = (await embedder.predict(paraphrases.map(([, t]) => t))) as number[][];
    let correct = 0;
    queries.forEach((query, i) => {
      const scores = targets.map((target) => cosine(query, target));
      if (scores.indexOf(Math.max(...scores)) === i) correct++;
    });
    const recall = correct / paraphrases.length;
    // Measured: 30/30 (docs/models.md). For contrast, ranking the same pairs by
    // shared words (Jaccard) finds 7/30: the pairs share meaning, not words.
    console.info(`default embedder paraphrase recall@1: ${correct}/${paraphrases.length} = ${recall.toFixed(3)}`);
    expect(recall).toBeGreaterThanOrEqual(0.8);
  });
});

describe('a listener that names no model', () => {
  let database: TestDatabase;
  let db: Superduper;

  beforeAll(async () => {
    database = await createTestDatabase('default_embedder');
    db = await connectTest(database);
    await database.sql.query('CREATE TABLE sentences (id int PRIMARY KEY, body text)');
    for (const [i, [, target]] of paraphrases.entries()) await database.sql.query('INSERT INTO sentences VALUES ($1, $2)', [i + 1, target]);
  });

  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });

  it('embeds with the default embedder, and like() finds a paraphrase', async () => {
    const [applied] = await db.apply(listener({ name: 'sentences_embedding', table: 'sentences', keys: ['body'] }));
    expect(applied).toMatchObject({ action: 'created', backfill: paraphrases.length });
    const model = await database.sql.query(`SELECT model, output_type FROM superduper.listeners WHERE name = 'sentences_embedding'`);
    expect(model.rows[0]).toEqual({ model: 'default-embedder', output_type: 'public.vector(512)' });
    await db.apply(vectorIndex({ name: 'sentences_index', listener: 'sentences_embedding' }));
    await db.start({ reconcileMs: 200 });
    await db.waitUntilIdle({ timeoutMs: 60_000 });
    const hits = await database.sql.query(
      `SELECT s.body FROM superduper.like('sentences_index', 'I cannot log in, how can I change my password', 1) AS l
       JOIN sentences s ON s.id = l.id::integer`,
    );
    expect(hits.rows).toEqual([{ body: 'I forgot my login credentials and need new ones' }]);
  });
});
