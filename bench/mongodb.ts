/**
 * MongoDB backfill, on the test emulation of a replica set (no MongoDB server
 * can be installed on these machines), in a process of its own:
 *
 * - throughput: a listener's backfill by the CLI sidecar, against the same work
 *   done by hand with the driver (read the documents in _id order, run the
 *   same ONNX model in the same batches, bulk-write the outputs), interleaved
 *   rounds on one server. The emulation's own speed is not MongoDB's, so only
 *   the ratio means anything.
 * - memory: the sidecar's resident memory over a backfill of a million
 *   documents, sampled at every tenth of the way.
 *
 *   make bench ONLY=mongodb
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MongoClient, type AnyBulkWriteOperation, type Document } from 'mongodb';
import { connect, type Superduper } from '../src/client.js';
import { listener } from '../src/components/listener.js';
import { createLogger } from '../src/logger.js';
import { queryTexts } from './lib/corpus.js';
import { round, sleep } from './lib/setup.js';
import { wordModel } from './lib/word-model.js';

export interface MongoBenchResult {
  documents: number;
  /** Seconds per round, in the order run. */
  sidecarSeconds: number[];
  driverSeconds: number[];
  /** Median driver time / median sidecar time: 1 means as fast as the hand-written loop. */
  throughputRatio: number;
  /** CPU seconds per round (medians): the server's, and the client's (the sidecar process, or the driver loop's). */
  cpuSeconds: { sidecar: { server: number; client: number }; driver: { server: number; client: number } };
  memory: { documents: number; seconds: number; peakRssMb: number; rssAtProgressMb: number[] };
}

const root = join(import.meta.dirname, '..', '..');
const BATCH = 64;
const CHUNK = 1000;

export async function mongoBenchmark(options: { documents?: number; rounds?: number; memoryDocuments?: number } = {}): Promise<MongoBenchResult> {
  // Smaller runs for a quick look: MONGO_BENCH_DOCUMENTS=10000 MONGO_BENCH_MEMORY_DOCUMENTS=50000.
  const documents = options.documents ?? Number(process.env.MONGO_BENCH_DOCUMENTS ?? 100_000);
  const rounds = options.rounds ?? 3;
  const emulator = await startEmulatorProcess();
  try {
    const sidecarSeconds: number[] = [];
    const driverSeconds: number[] = [];
    const cpu = { sidecar: { server: [] as number[], client: [] as number[] }, driver: { server: [] as number[], client: [] as number[] } };
    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first: the machine is shared, and warms up.
      const order = round % 2 === 0 ? ['sidecar', 'driver'] : ['driver', 'sidecar'];
      for (const which of order) {
        const serverCpuBefore = cpuSeconds(emulator.child.pid!);
        const run = which === 'sidecar' ? await sidecarBackfill(emulator.uri, documents) : await driverBackfill(emulator.uri, documents);
        const serverCpu = cpuSeconds(emulator.child.pid!) - serverCpuBefore;
        (which === 'sidecar' ? sidecarSeconds : driverSeconds).push(round3(run.seconds));
        cpu[which as 'sidecar' | 'driver'].server.push(serverCpu);
        cpu[which as 'sidecar' | 'driver'].client.push(run.clientCpu);
        process.stderr.write(
          `bench: mongodb ${which} ${documents} documents: ${run.seconds.toFixed(2)} s (CPU: server ${serverCpu.toFixed(2)} s, client ${run.clientCpu.toFixed(2)} s, including setup)\n`,
        );
      }
    }
    const memory = await memoryRun(emulator.uri, options.memoryDocuments ?? Number(process.env.MONGO_BENCH_MEMORY_DOCUMENTS ?? 1_000_000));
    const medians = (side: { server: number[]; client: number[] }) => ({ server: round(median(side.server), 2), client: round(median(side.client), 2) });
    return {
      documents,
      sidecarSeconds,
      driverSeconds,
      throughputRatio: round(median(driverSeconds) / median(sidecarSeconds), 3),
      cpuSeconds: { sidecar: medians(cpu.sidecar), driver: medians(cpu.driver) },
      memory,
    };
  } finally {
    emulator.child.kill('SIGTERM');
    await new Promise((resolve) => emulator.child.once('exit', resolve));
  }
}

async function startEmulatorProcess(): Promise<{ child: ChildProcess; uri: string }> {
  const child = spawn(process.execPath, [join(root, 'bench', 'dist', 'mongodb-emulator.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const uri = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const line = /mongodb:\/\/\S+/.exec(out);
      if (line) resolve(line[0]);
    });
    child.once('exit', (code) => reject(new Error(`the emulator exited with ${code}`)));
  });
  return { child, uri };
}

let databases = 0;
async function freshMongo(serverUri: string, documents: number): Promise<{ uri: string; client: MongoClient; db: Superduper }> {
  const uri = `${serverUri}/bench_${process.pid}_${databases++}`;
  const client = new MongoClient(uri);
  await client.connect();
  const texts = queryTexts(10_000, 7);
  const docs = client.db().collection<Document>('docs');
  for (let start = 0; start < documents; start += 10_000) {
    await docs.insertMany(
      Array.from({ length: Math.min(10_000, documents - start) }, (_, i): Document => ({ _id: start + i, body: texts[(start + i) % texts.length] })),
      { ordered: false },
    );
  }
  const db = await connect(uri, { logger: createLogger('warn') });
  await db.install();
  await db.apply(wordModel('words', { dim: 64, seed: 3 }));
  return { uri, client, db };
}

async function dropMongo(target: { client: MongoClient; db: Superduper }): Promise<void> {
  await target.db.close();
  await target.client.db().dropDatabase();
  await target.client.close();
}

function startSidecar(uri: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(root, 'bin', 'superduper.js'), 'start', uri, '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stderr!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('sidecar started')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`the sidecar exited with ${code}: ${out}`)));
  });
}

async function stopSidecar(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
}

/** Applying a listener to the documents, until every output is written (the sidecar up and idle before). */
async function sidecarBackfill(serverUri: string, documents: number, sample?: (pid: number, progress: number) => void): Promise<{ seconds: number; clientCpu: number }> {
  const target = await freshMongo(serverUri, documents);
  const sidecar = await startSidecar(target.uri);
  try {
    await sleep(500);
    const started = performance.now();
    const cpuBefore = cpuSeconds(sidecar.pid!);
    await target.db.apply(listener({ name: 'docs_words', model: 'words', collection: 'docs', keys: ['body'], settings: { batch_size: BATCH, chunk_size: CHUNK } }));
    // Polled from the listener's own document (two indexed reads), not db.status(), whose
    // counts would load the server during this run and not during the driver's.
    const listeners = target.client.db().collection('superduper.listeners');
    for (;;) {
      const doc = await listeners.findOne({ name: 'docs_words' }, { projection: { backfill: 1 } });
      const backfill = doc?.backfill as { done: boolean; written: number } | undefined;
      sample?.(sidecar.pid!, (backfill?.written ?? 0) / documents);
      if (backfill?.done) break;
      await sleep(100);
    }
    const seconds = (performance.now() - started) / 1000;
    const clientCpu = cpuSeconds(sidecar.pid!) - cpuBefore;
    const written = await target.client.db().collection('superduper.outputs.docs_words').countDocuments({});
    if (written !== documents) throw new Error(`the sidecar wrote ${written} of ${documents} outputs`);
    return { seconds, clientCpu };
  } finally {
    await stopSidecar(sidecar);
    await dropMongo(target);
  }
}

/** The same work by hand: the driver's cursor in _id order, the model in the same batches, bulk upserts of each thousand. */
async function driverBackfill(serverUri: string, documents: number): Promise<{ seconds: number; clientCpu: number }> {
  const target = await freshMongo(serverUri, documents);
  try {
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const record = (await target.db.backend.registry.model('words'))!;
    const model = await target.db.models.get(record);
    const outputs = target.client.db().collection('outputs');
    let pending: Document[] = [];
    const flush = async () => {
      const operations: AnyBulkWriteOperation[] = [];
      for (let start = 0; start < pending.length; start += BATCH) {
        const slice = pending.slice(start, start + BATCH);
        const vectors = await model.predict(slice.map((doc) => doc.body));
        slice.forEach((doc, i) => operations.push({ updateOne: { filter: { _id: doc._id }, update: { $set: { output: Array.from(vectors[i] as ArrayLike<number>) } }, upsert: true } }));
      }
      if (operations.length > 0) await outputs.bulkWrite(operations, { ordered: false });
      pending = [];
    };
    for await (const doc of target.client.db().collection('docs').find({}, { projection: { body: 1 } }).sort({ _id: 1 }).batchSize(CHUNK)) {
      pending.push(doc);
      if (pending.length === CHUNK) await flush();
    }
    await flush();
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpuBefore);
    if ((await outputs.countDocuments({})) !== documents) throw new Error('the driver loop wrote the wrong number of outputs');
    return { seconds, clientCpu: (used.user + used.system) / 1e6 };
  } finally {
    await dropMongo(target);
  }
}

async function memoryRun(serverUri: string, documents: number): Promise<MongoBenchResult['memory']> {
  const rssAtProgressMb: number[] = [];
  let nextMark = 0.1;
  let peakKb = 0;
  const { seconds } = await sidecarBackfill(serverUri, documents, (pid, progress) => {
    peakKb = Math.max(peakKb, rssKb(pid, 'VmHWM'));
    while (progress >= nextMark - 1e-9 && nextMark <= 1 + 1e-9) {
      rssAtProgressMb.push(round(rssKb(pid, 'VmRSS') / 1024, 1));
      nextMark += 0.1;
    }
  });
  return { documents, seconds: round(seconds, 1), peakRssMb: round(peakKb / 1024, 1), rssAtProgressMb };
}

/** User + system CPU seconds a process has used (from /proc: clock ticks of 1/100 s on Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const round3 = (value: number) => round(value, 3);
