/**
 * A listener chained on another's outputs follows that listener's backfill
 * (sql/functions/035_backfill_follow.sql): what the upstream's backfill
 * writes is read by the chained listener's own backfill, in ranges below the
 * upstream's lowest range not yet written, not taken row by row through the
 * change log and the queue. Changes made meanwhile still go through the
 * triggers, and nothing is computed from a value that is no longer there.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { listener } from '../../../src/components/listener.js';
import { functionModel } from '../../../src/models/function-runtime.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { countingFeatureModel } from '../../helpers/models.js';

let database: TestDatabase;
let db: Superduper;
const q = <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows as T[]);

beforeEach(async () => {
  database = await createTestDatabase('chain_follows');
  db = await connectTest(database);
});

afterEach(async () => {
  await db?.close();
  await database?.drop();
});

/** A splitter into words, one output row per word; `gate` holds its calls back while set. */
function wordSplitter(state: { gate?: Promise<void>; calls: number }) {
  return functionModel({
    name: 'words',
    output: { type: 'text', flatten: true },
    version: '1',
    predict: async (inputs: string[]) => {
      state.calls++;
      await state.gate;
      return inputs.map((text) => text.split(' '));
    },
  });
}

/** Every word of every document, beside its vector: a word without one, or with another's, is a row here. */
async function mismatches(): Promise<unknown[]> {
  return q(`
    SELECT c.id, c._position, c.output AS word, v.output AS vector
    FROM superduper.out_doc_words AS c
    FULL JOIN superduper.out_word_vectors AS v USING (id, _position)
    WHERE c.output IS NULL OR v.output IS NULL
       OR v.output::text <> (SELECT format('[%s,%s,%s]', length(c.output), length(regexp_replace(c.output, '[^aeiou]', '', 'gi')),
                                           length(regexp_replace(c.output, '[^0-9]', '', 'g'))))
    ORDER BY 1, 2`);
}

describe('a chained listener follows the backfill of the listener it reads', () => {
  it('reads the chunks of a backfill by its own backfill: no change is logged or queued for them, each is computed once', async () => {
    await q('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await q(`INSERT INTO docs SELECT g, 'alpha beta ' || g || ' gamma' FROM generate_series(1, 60) g`);
    const state = { calls: 0 };
    const vectors = countingFeatureModel();
    await db.apply(
      wordSplitter(state),
      listener({ name: 'doc_words', model: 'words', table: 'docs', keys: ['body'], settings: { chunk_size: 10, batch_size: 10 } }),
      vectors,
      listener({ name: 'word_vectors', model: 'features', schema: 'superduper', table: 'out_doc_words', keys: ['output'], settings: { chunk_size: 16 } }),
    );
    // Queue entries take their ids from this sequence: a change to compute advances it.
    const [before] = await q<{ n: string }>(`SELECT nextval('superduper._change_id')::text AS n`);
    await db.start({ reconcileMs: 100 });
    const { failed } = await db.waitFor('word_vectors', { timeoutMs: 30_000 });
    expect(failed).toEqual([]);

    expect(await mismatches()).toEqual([]);
    expect((await q<{ n: number }>('SELECT count(*)::int AS n FROM superduper.out_word_vectors'))[0]!.n).toBe(240);
    // Each of the 240 words once (the same word in two documents is two rows, two calls).
    expect([...vectors.calls.values()].reduce((a, b) => a + b, 0)).toBe(240);
    const [after] = await q<{ n: string }>(`SELECT nextval('superduper._change_id')::text AS n`);
    expect(BigInt(after!.n) - BigInt(before!.n), 'queue entries made meanwhile').toBe(1n);
    const [status] = await q(`SELECT pending::int, in_flight::int FROM superduper.status WHERE listener = 'word_vectors'`);
    expect(status).toEqual({ pending: 0, in_flight: 0 });
  });

  it('still computes what changes while the backfill it follows runs, and nothing from a value that is gone', async () => {
    await q('CREATE TABLE docs (id int PRIMARY KEY, body text)');
    await q(`INSERT INTO docs SELECT g, 'alpha beta ' || g FROM generate_series(1, 20) g`);
    let open!: () => void;
    const state = { calls: 0, gate: new Promise<void>((resolve) => (open = resolve)) };
    await db.apply(
      wordSplitter(state),
      listener({ name: 'doc_words', model: 'words', table: 'docs', keys: ['body'], settings: { chunk_size: 5, batch_size: 5 } }),
      countingFeatureModel(),
      listener({ name: 'word_vectors', model: 'features', schema: 'superduper', table: 'out_doc_words', keys: ['output'], settings: { chunk_size: 4 } }),
    );
    await db.start({ reconcileMs: 100, concurrency: 1 });
    // The first range (documents 1-5) is being split.
    await eventually(async () => state.calls > 0, 20_000, 'the splitter to be called');
    // In the range being computed, in ranges not yet handed out, and new.
    await q(`UPDATE docs SET body = 'changed while split' WHERE id = 2`);
    await q(`UPDATE docs SET body = 'changed before its range' WHERE id = 12`);
    await q(`DELETE FROM docs WHERE id IN (3, 13)`);
    await q(`INSERT INTO docs VALUES (21, 'a new document')`);
    open();
    const { failed } = await db.waitFor('word_vectors', { timeoutMs: 30_000 });
    expect(failed).toEqual([]);

    expect(await mismatches()).toEqual([]);
    const words = await q<{ id: number; words: string }>(
      `SELECT id, string_agg(output, ' ' ORDER BY _position) AS words FROM superduper.out_doc_words GROUP BY id ORDER BY id`,
    );
    const docs = await q<{ id: number; words: string }>('SELECT id, body AS words FROM docs ORDER BY id');
    expect(words).toEqual(docs);
  });
});
