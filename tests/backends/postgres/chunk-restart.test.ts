/**
 * The database server restarted under a running sidecar (superduper start,
 * default settings) while it chunks documents and embeds the chunks: once
 * during the backfill of a chunker listener, once during a stream of document
 * edits (texts that grow, shrink, empty, go and come back), where it also
 * crashes (kill -9 of the postmaster). Nothing is lost:
 * afterwards each document's chunks are the chunker's for its final text, and
 * each chunk has one embedding of its own text. The server is this file's own.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Superduper } from '../../../src/client.js';
import { openaiEmbeddings } from '../../../src/components/api-model.js';
import { chunkerModel } from '../../../src/components/model.js';
import { listener } from '../../../src/components/listener.js';
import { createLogger } from '../../../src/logger.js';
import { startApiServer, type ApiServer } from '../../helpers/api-servers.js';
import { checkChunks, documentBody } from '../../helpers/chunk-checks.js';
import { createCluster, type TestCluster } from '../../helpers/cluster.js';
import { eventually } from '../../helpers/database.js';
import { retrying } from '../../helpers/points.js';
import { startCliSidecar, type CliSidecar } from '../../helpers/processes.js';

const DOCUMENTS = 600;
const SIZE = 200;
const OVERLAP = 40;
const DIM = 4;

let cluster: TestCluster;
let server: ApiServer;
let db: Superduper;
let sql: pg.Pool;
let sidecar: CliSidecar;

beforeAll(async () => {
  process.env.CHUNK_RESTART_KEY = 'restart-key';
  server = await startApiServer({ key: 'restart-key', dim: DIM });
  cluster = await createCluster('chunk_restart');
  db = await connect(cluster.uri(), { logger: createLogger('silent') });
  await db.install();
  sql = new pg.Pool({ connectionString: cluster.uri(), max: 3 });
  sql.on('error', () => {});
  await sql.query('CREATE TABLE docs (id int PRIMARY KEY, body text)');
  const ids = Array.from({ length: DOCUMENTS }, (_, i) => i + 1);
  await sql.query('INSERT INTO docs SELECT * FROM unnest($1::int[], $2::text[])', [ids, ids.map((id) => documentBody(id))]);
  sidecar = await startCliSidecar(cluster.uri());
});

afterAll(async () => {
  sidecar?.child.kill('SIGKILL');
  await sql?.end();
  await db?.close();
  await cluster?.destroy();
  await server?.close();
});

async function expectCurrent(): Promise<void> {
  const { failed } = await retrying(() => db.waitFor('chunk_vectors', { timeoutMs: 45_000 })).catch((error: Error) => {
    throw new Error(`${error.message}\nsidecar output:\n${sidecar.output()}`);
  });
  expect(failed).toEqual([]);
  const check = await checkChunks(sql, { chunks: 'out_doc_chunks', vectors: 'out_chunk_vectors', size: SIZE, overlap: OVERLAP, dim: DIM });
  expect(check).toMatchObject({ wrongDocuments: [], missingEmbeddings: 0, wrongEmbeddings: 0, orphanEmbeddings: 0 });
  expect(check.chunks).toBeGreaterThan(check.documents * 2);
  expect((await sql.query('SELECT * FROM superduper.failures')).rows).toEqual([]);
  expect(sidecar.running()).toBe(true);
}

describe('a server restart under a sidecar chunking and embedding', () => {
  it('during the backfill of a chunker listener', async () => {
    await db.apply(
      chunkerModel({ name: 'chunker', method: 'recursive', size: SIZE, overlap: OVERLAP }),
      listener({ name: 'doc_chunks', model: 'chunker', table: 'docs', keys: ['body'], settings: { chunk_size: 10, batch_size: 10 } }),
      openaiEmbeddings({ name: 'embedder', model: 'test-embedding', dim: DIM, baseUrl: `${server.url}/v1`, apiKeyEnv: 'CHUNK_RESTART_KEY', batchSize: 32 }),
      listener({ name: 'chunk_vectors', model: 'embedder', schema: 'superduper', table: 'out_doc_chunks', keys: ['output'], settings: { batch_size: 32 } }),
    );
    const chunked = async () => (await sql.query('SELECT count(DISTINCT id)::int AS n FROM superduper.out_doc_chunks')).rows[0].n as number;
    await eventually(async () => (await chunked()) >= DOCUMENTS / 10, 30_000, 'the chunk backfill to be under way');
    await cluster.restart('fast');
    expect(await retrying(chunked), 'restarted mid-backfill').toBeLessThan(DOCUMENTS);
    await expectCurrent();
  });

  it('during a stream of edits that grow, shrink, empty, delete and insert documents (a restart, then a crash)', async () => {
    let stop = false;
    let edits = 0;
    let seed = 10_000;
    let nextId = DOCUMENTS + 1;
    const random = (n: number) => Math.floor(Math.random() * n);
    const write = async () => {
      while (!stop) {
        const id = 1 + random(DOCUMENTS);
        const kind = random(10);
        const statement =
          kind < 6
            ? { text: 'UPDATE docs SET body = $2 WHERE id = $1', values: [id, documentBody(seed++, 1 + random(12))] }
            : kind < 7
              ? { text: `UPDATE docs SET body = CASE WHEN random() < 0.5 THEN NULL ELSE '' END WHERE id = $1`, values: [id] }
              : kind < 8
                ? { text: 'UPDATE docs SET body = left(body, 120) WHERE id = $1', values: [id] }
                : kind < 9
                  ? { text: 'DELETE FROM docs WHERE id = $1', values: [id] }
                  : { text: 'INSERT INTO docs VALUES ($1, $2)', values: [nextId++, documentBody(seed++)] };
        // A statement whose answer was lost may or may not have committed: the
        // check compares with whatever the table holds in the end.
        await retrying(() => sql.query(statement.text, statement.values)).catch(() => {});
        edits++;
      }
    };
    const writing = Promise.all([write(), write()]);
    await eventually(async () => edits >= 200, 30_000, 'edits under way');
    await cluster.restart('immediate');
    let after = edits;
    await eventually(async () => edits >= after + 200, 30_000, 'edits after the restart');
    // And a crash of the server (kill -9 of the postmaster), with its crash recovery.
    await cluster.crash();
    after = edits;
    await eventually(async () => edits >= after + 200, 30_000, 'edits after the crash');
    stop = true;
    await writing;
    await expectCurrent();
  });
});
