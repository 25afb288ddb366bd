/**
 * kill -9 of a sidecar process (superduper start, default settings) in the
 * middle of a chunk backfill of many documents, with a chained embedding
 * listener (an embeddings API on a local server) working behind it; documents
 * change while its claims are still held. A new sidecar finishes: every
 * document has exactly the chunks the chunker gives its text now (none
 * missing, none twice, positions 0..n-1, the right spans), and every chunk one
 * embedding of its own text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Superduper } from '../../../src/client.js';
import { openaiEmbeddings } from '../../../src/components/api-model.js';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import { startApiServer, type ApiServer } from '../../helpers/api-servers.js';
import { checkChunks, documentBody } from '../../helpers/chunk-checks.js';
import { connectTest, createTestDatabase, eventually, type TestDatabase } from '../../helpers/database.js';
import { startCliSidecar } from '../../helpers/processes.js';

const DOCUMENTS = 1500;
const SIZE = 200;
const OVERLAP = 40;
const DIM = 4;

let database: TestDatabase;
let db: Superduper;
let server: ApiServer;
const q = (sql: string, params: unknown[] = []) => database.sql.query(sql, params).then((r) => r.rows);

beforeAll(async () => {
  // The sidecar processes inherit the key's variable.
  process.env.CHUNK_KILL_KEY = 'kill-key';
  server = await startApiServer({ key: 'kill-key', dim: DIM });
  database = await createTestDatabase('chunk_kill');
  db = await connectTest(database);
  await q('CREATE TABLE docs (id int PRIMARY KEY, body text)');
  await q('INSERT INTO docs SELECT g, NULL FROM generate_series(1, $1::int) g', [DOCUMENTS]);
  const ids = Array.from({ length: DOCUMENTS }, (_, i) => i + 1);
  await q('UPDATE docs d SET body = b.body FROM unnest($1::int[], $2::text[]) AS b(id, body) WHERE d.id = b.id', [ids, ids.map((id) => documentBody(id))]);
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
  await server?.close();
});

describe('a sidecar killed (kill -9) mid chunk backfill', () => {
  it('leaves every document with exactly its chunks, and every chunk its embedding, once a new sidecar finishes', async () => {
    // Reconciling often, so that it embeds the chunks written so far well before the chunking is done.
    const first = await startCliSidecar(database.uri, { args: ['--reconcile-ms', '250'] });
    // Applied while it runs: the backfill starts at once, in small ranges so that it is under way for a while.
    await db.apply(
      chunkerModel({ name: 'chunker', method: 'recursive', size: SIZE, overlap: OVERLAP }),
      listener({ name: 'doc_chunks', model: 'chunker', table: 'docs', keys: ['body'], settings: { chunk_size: 10, batch_size: 10 } }),
      openaiEmbeddings({ name: 'embedder', model: 'test-embedding', dim: DIM, baseUrl: `${server.url}/v1`, apiKeyEnv: 'CHUNK_KILL_KEY', batchSize: 32 }),
      listener({ name: 'chunk_vectors', model: 'embedder', schema: 'superduper', table: 'out_doc_chunks', keys: ['output'], settings: { batch_size: 32 } }),
    );
    const chunked = async () => (await q('SELECT count(DISTINCT id)::int AS n FROM superduper.out_doc_chunks'))[0].n as number;
    const vectors = async () => (await q('SELECT count(*)::int AS n FROM superduper.out_chunk_vectors'))[0].n as number;
    // Both under way: the chunks' backfill and the embedding of the chunks written so far.
    await eventually(async () => (await chunked()) >= DOCUMENTS / 10 && (await vectors()) > 0, 30_000, 'the chunk backfill and the embeddings to be under way');
    first.child.kill('SIGKILL');
    await first.exited;
    const done = await chunked();
    expect(done, 'killed mid-backfill').toBeLessThan(DOCUMENTS);
    const embedded = await vectors();
    console.log(`killed with ${done} of ${DOCUMENTS} documents chunked and ${embedded} chunks embedded`);

    // While its claims are held: documents shrink, grow, empty, go and arrive.
    await q(`UPDATE docs SET body = left(body, 150) WHERE id % 37 = 0`);
    await q(`UPDATE docs SET body = body || E'\n\n' || body WHERE id % 41 = 0`);
    await q(`UPDATE docs SET body = '' WHERE id % 97 = 0`);
    await q(`DELETE FROM docs WHERE id % 89 = 0`);
    await q(`INSERT INTO docs SELECT g, $2 FROM generate_series($1::int + 1, $1::int + 20) g`, [DOCUMENTS, documentBody(7)]);

    const second = await startCliSidecar(database.uri);
    // The first one's claims are released once it is presumed dead (15 s without a heartbeat, the default).
    const { failed } = await db.waitFor('chunk_vectors', { timeoutMs: 50_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\n${second.output()}`);
    });
    expect(failed).toEqual([]);
    const check = await checkChunks(database.sql, { chunks: 'out_doc_chunks', vectors: 'out_chunk_vectors', size: SIZE, overlap: OVERLAP, dim: DIM });
    expect(check).toMatchObject({ wrongDocuments: [], missingEmbeddings: 0, wrongEmbeddings: 0, orphanEmbeddings: 0 });
    expect(check.chunks).toBeGreaterThan(DOCUMENTS * 3);
    expect(await q('SELECT * FROM superduper.failures')).toEqual([]);
    expect(second.running()).toBe(true);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 90_000);
});
