/**
 * API models: how much a model's `concurrency` buys when every call waits on the
 * network. A local OpenAI-compatible embeddings server answers each call after
 * 50 ms; a listener embeds ~2000 rows, 16 texts per call, with the model allowed
 * 1, then 4, then 16 calls in flight. The listener's batch_size (256 = 16 × 16)
 * gives each batch enough calls to fill 16 slots.
 *
 *   make bench ONLY=api-models
 */
import { openaiEmbeddings } from '../src/components/api-model.js';
import { listener } from '../src/components/listener.js';
import { startApiServer } from '../tests/helpers/api-servers.js';
import { dropDatabase, freshDatabase, open, round } from './lib/setup.js';

export interface ApiModelsRun {
  concurrency: number;
  seconds: number;
  rowsPerSecond: number;
  /** HTTP calls the server answered, and the most it saw at once. */
  calls: number;
  maxInFlight: number;
}

export interface ApiModelsResult {
  rows: number;
  latencyMs: number;
  batchSize: number;
  listenerBatchSize: number;
  runs: ApiModelsRun[];
}

const DATABASE = 'superduper_bench_api_models';
const KEY_ENV = 'SUPERDUPER_BENCH_API_KEY';

export async function apiModelsBenchmark(rows = 2000, latencyMs = 50, concurrencies = [1, 4, 16]): Promise<ApiModelsResult> {
  const batchSize = 16;
  const listenerBatchSize = batchSize * Math.max(...concurrencies);
  // The local server wants a key, like the real one; this is not a secret.
  process.env[KEY_ENV] ??= 'bench-key';
  const server = await startApiServer({ latencyMs, dim: 16 });
  const uri = await freshDatabase(DATABASE);
  const db = await open(uri);
  const runs: ApiModelsRun[] = [];
  try {
    await db.db.query(`CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL);
      INSERT INTO docs SELECT g, 'document number ' || g || ' about ' || md5(g::text) FROM generate_series(1, ${rows}) g`);
    const sidecar = await db.start();
    try {
      for (const concurrency of concurrencies) {
        // A new listener each run, so that each run is a full backfill.
        if (runs.length > 0) await db.remove('docs_api');
        server.requests.length = 0;
        server.maxInFlight = 0;
        const started = performance.now();
        await db.apply(
          openaiEmbeddings({ name: 'api_emb', model: 'bench-embed', dim: 16, baseUrl: `${server.url}/v1`, apiKeyEnv: KEY_ENV, batchSize, concurrency }),
          listener({ name: 'docs_api', model: 'api_emb', table: 'docs', keys: ['body'], settings: { batch_size: listenerBatchSize } }),
        );
        await db.waitUntilIdle({ listeners: ['docs_api'], timeoutMs: 300_000, pollMs: 20 });
        const seconds = (performance.now() - started) / 1000;
        const done = Number((await db.db.query<{ n: string }>('SELECT count(*) AS n FROM superduper.out_docs_api')).rows[0]!.n);
        if (done !== rows) throw new Error(`api-models: ${done} of ${rows} rows computed at concurrency ${concurrency}`);
        runs.push({ concurrency, seconds: round(seconds, 3), rowsPerSecond: Math.round(rows / seconds), calls: server.requests.length, maxInFlight: server.maxInFlight });
      }
    } finally {
      await sidecar.stop();
    }
  } finally {
    await db.close();
    await server.close();
    await dropDatabase(DATABASE);
  }
  return { rows, latencyMs, batchSize, listenerBatchSize, runs };
}
