/**
 * db.rag() on MongoDB: the backend has no RAG (no chunks as rows, no answer
 * cache), and says so before anything runs, rather than failing half-way.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { connectMongoTest, createMongoTestDatabase, type MongoTestDatabase } from '../../helpers/mongodb.js';

let database: MongoTestDatabase;
let db: Superduper;

beforeAll(async () => {
  database = await createMongoTestDatabase('rag');
  db = await connectMongoTest(database);
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

it('refuses db.rag() clearly, with what to do instead', async () => {
  const refused = db.rag('chunk_index', 'How long are backups kept?', { llm: 'llm' });
  await expect(refused).rejects.toThrow('db.rag(): the mongodb backend has no retrieval-augmented generation');
  await expect(refused).rejects.toMatchObject({ code: 'unsupported', hint: expect.stringMatching(/db\.search\(\)/) });
});
