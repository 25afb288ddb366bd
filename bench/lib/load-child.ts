/**
 * Loads one model in a fresh process and reports what loading cost:
 *   node --expose-gc bench/dist/load-child.mjs <kind> [model file]
 * Prints one JSON line {kind, loadMs, rssBeforeMB, rssAfterMB, rssAfterFirstCallMB}.
 * A process of its own, so each model's memory is measured from the same start;
 * the model file is read before the first measurement (a sidecar holds the
 * stored bytes only while it loads them).
 */
import { readFileSync } from 'node:fs';
import { OnnxRuntime } from '../../src/models/onnx-runtime.js';
import { TextEmbedderRuntime } from '../../src/models/text-embedder-runtime.js';
import type { ModelRecord, ModelRuntime } from '../../src/models/types.js';

const kinds: Record<string, () => { runtime: ModelRuntime; record: ModelRecord; artifact?: Uint8Array; input: unknown }> = {
  'default-embedder': () => ({
    runtime: new TextEmbedderRuntime(),
    record: record('default-embedder', 'text-embedder', { type: 'vector', dim: 512 }, {}),
    input: 'a cat naps on the couch',
  }),
  'onnx-minilm-shaped': () => ({
    runtime: new OnnxRuntime(),
    record: record('encoder', 'onnx', { type: 'vector', dim: 384 }, { tokenizer: { type: 'words', vocab_size: 8192, max_length: 32 } }, 'file'),
    artifact: new Uint8Array(readFileSync(process.argv[3]!)),
    input: 'a cat naps on the couch',
  }),
};

function record(name: string, runtime: string, output: ModelRecord['output'], config: Record<string, unknown>, artifact?: string): ModelRecord {
  return { name, runtime, output, config, artifact: artifact ?? null, spec_hash: name };
}

const kind = process.argv[2]!;
const make = kinds[kind];
if (!make) throw new Error(`unknown model kind ${kind}; one of ${Object.keys(kinds).join(', ')}`);
const { runtime, record: model, artifact, input } = make();
const mb = () => Math.round((process.memoryUsage.rss() / 2 ** 20) * 10) / 10;
global.gc?.();
const rssBeforeMB = mb();
const started = performance.now();
const loaded = await runtime.load(model, { fetchArtifact: async () => artifact! });
const loadMs = Math.round(performance.now() - started);
const rssAfterMB = mb();
await loaded.predict([input]);
const rssAfterFirstCallMB = mb();
process.stdout.write(`${JSON.stringify({ kind, loadMs, rssBeforeMB, rssAfterMB, rssAfterFirstCallMB, artifactMB: artifact ? Math.round(artifact.length / 2 ** 20) : null })}\n`);
await loaded.close?.();
