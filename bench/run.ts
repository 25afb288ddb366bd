/**
 * Runs the benchmarks and writes docs/benchmarks.md and bench/results/latest.json.
 * `make bench` builds this file (with the sources it imports) into bench/dist/
 * and runs it; pass names to run only some: make bench ONLY="backfill streaming".
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { apiModelsBenchmark, type ApiModelsResult } from './api-models.js';
import { documentsBenchmark, type DocumentsResult } from './documents.js';
import { embeddedBenchmark, type EmbeddedResult } from './embedded.js';
import { endpointBenchmark, type EndpointResult } from './endpoint.js';
import { backfillBenchmark, BACKFILL, type BackfillResult } from './backfill.js';
import { memoryBenchmark, type MemoryResult } from './memory.js';
import { mongoBenchmark, type MongoBenchResult } from './mongodb.js';
import { onnxEmbedderBenchmark, type OnnxEmbedderResult } from './onnx-embedder.js';
import { reconnectBenchmark, type ReconnectResult } from './reconnect.js';
import { searchBenchmark, type SearchResult } from './search.js';
import { streamingComparison, type StreamingResult } from './streaming.js';
import { metricsBenchmark, type MetricsResult } from './metrics.js';
import { trainingBenchmark, type TrainingResult } from './training.js';
import { waitForBenchmark, type WaitForResult } from './wait-for.js';
import { writeOverheadBenchmark, type WriteOverheadResult } from './write-overhead.js';

const root = join(import.meta.dirname, '..', '..');
const only = (process.env.ONLY ?? '').split(/[\s,]+/).filter(Boolean);
const wanted = (name: string) => only.length === 0 || only.includes(name);

interface Results {
  date: string;
  machine: string;
  /** When each benchmark in this file last ran (a partial run keeps the others'). */
  measuredAt?: Record<string, string>;
  backfill?: BackfillResult;
  streaming?: StreamingResult;
  writeOverhead?: WriteOverheadResult;
  memory?: MemoryResult;
  search?: SearchResult;
  onnxEmbedder?: OnnxEmbedderResult;
  apiModels?: ApiModelsResult;
  embedded?: EmbeddedResult;
  endpoint?: EndpointResult;
  reconnect?: ReconnectResult;
  waitFor?: WaitForResult;
  mongodb?: MongoBenchResult;
  documents?: DocumentsResult;
  metrics?: MetricsResult;
  training?: TrainingResult;
}

const results: Results = {
  date: new Date().toISOString(),
  machine: `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, PostgreSQL 15 (scripts/pg.sh)`,
};

const measuredAt: Record<string, string> = {};
const step = async <T>(name: string, run: () => Promise<T>): Promise<T | undefined> => {
  if (!wanted(name)) return undefined;
  process.stderr.write(`bench: ${name}...\n`);
  measuredAt[name] = new Date().toISOString();
  const result = await run();
  process.stderr.write(`bench: ${name}: ${JSON.stringify(result)}\n`);
  return result;
};

results.backfill = await step('backfill', () => backfillBenchmark());
results.streaming = await step('streaming', () => streamingComparison());
results.writeOverhead = await step('write-overhead', () => writeOverheadBenchmark());
results.memory = await step('memory', () => memoryBenchmark());
results.search = await step('search', () => searchBenchmark());
results.onnxEmbedder = await step('onnx-embedder', () => onnxEmbedderBenchmark());
results.apiModels = await step('api-models', () => apiModelsBenchmark());
results.embedded = await step('embedded', () => embeddedBenchmark());
results.endpoint = await step('endpoint', () => endpointBenchmark());
results.reconnect = await step('reconnect', () => reconnectBenchmark());
results.waitFor = await step('wait-for', () => waitForBenchmark());
results.mongodb = await step('mongodb', () => mongoBenchmark());
results.documents = await step('documents', () => documentsBenchmark());
results.metrics = await step('metrics', () => metricsBenchmark());
results.training = await step('training', () => trainingBenchmark());

// A partial run (ONLY=...) keeps the other benchmarks' last results.
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
const file = join(root, 'bench', 'results', 'latest.json');
const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<Results>) : {};
const merged = {
  ...previous,
  ...Object.fromEntries(Object.entries(results).filter(([, value]) => value !== undefined)),
  measuredAt: { ...previous.measuredAt, ...measuredAt },
};
writeFileSync(file, `${JSON.stringify(merged, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
