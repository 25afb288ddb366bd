/**
 * A listener chained on a flattened outputs table starts on the elements
 * written so far while the listener upstream still has a long backlog, and
 * an unrelated listener's new rows are computed meanwhile too: one busy
 * listener does not hold up the others of the same sidecar until its backlog
 * is gone.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { countingFeatureModel } from '../../helpers/models.js';

let database: TestDatabase;
let db: Superduper;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

beforeEach(async () => {
  database = await createTestDatabase('chain_busy');
  db = await connectTest(database);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

const DOCUMENTS = 2000;

describe('a busy listener and the others', () => {
  it('embeds chunks while the chunking backlog is still long, and computes another table meanwhile', async () => {
    await q('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await q(`INSERT INTO docs SELECT g, 'one two three ' || g FROM generate_series(1, $1::int) g`, [DOCUMENTS]);
    await q('CREATE TABLE notes (id int PRIMARY KEY, body text)');
    await db.apply(
      // A slow splitter, one document per batch: its backlog lasts far longer than the test.
      functionModel({
        name: 'slow_words',
        output: { type: 'text', flatten: true },
        version: '1',
        predict: async (inputs: string[]) => {
          await new Promise((resolve) => setTimeout(resolve, 40));
          return inputs.map((text) => text.split(' '));
        },
      }),
      listener({ name: 'doc_words', model: 'slow_words', table: 'docs', keys: ['body'], settings: { batch_size: 1, chunk_size: 1 } }),
      countingFeatureModel(),
      listener({ name: 'word_vectors', model: 'features', schema: 'superduper', table: 'out_doc_words', keys: ['output'] }),
      listener({ name: 'note_vectors', model: 'features', table: 'notes', keys: ['body'] }),
    );
    await db.start({ reconcileMs: 200 });
    const count = async (table: string) => (await q(`SELECT count(*)::int AS n FROM ${table}`))[0].n as number;
    await eventually(async () => (await count('superduper.out_doc_words')) > 0, 20_000, 'chunking under way');
    await q(`INSERT INTO notes VALUES (1, 'a note')`);
    await eventually(async () => (await count('superduper.out_word_vectors')) > 0 && (await count('superduper.out_note_vectors')) > 0, 20_000, 'the other listeners to run');
    const chunked = (await q('SELECT count(DISTINCT id)::int AS n FROM superduper.out_doc_words'))[0].n as number;
    expect(chunked, 'the upstream backlog is not done').toBeLessThan(DOCUMENTS);
  });
});
