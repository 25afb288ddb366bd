import ort from 'onnxruntime-node';
import { feedBuilder, type TensorType } from './onnx-feeds.js';
import { exposeZipMapInputs } from './onnx-graph.js';
import { splitRows } from './onnx-outputs.js';
import type { LoadedModel, ModelRecord, ModelRuntime, RuntimeContext } from './types.js';
import type { WordTokenizerConfig } from './word-tokenizer.js';

/**
 * config of an ONNX model (all optional):
 *   input      ONNX input to feed the row to (default: the graph's only input)
 *   inputs     {onnx input: [key columns]}: several inputs, each from some columns
 *   output     ONNX output to store (default: the graph's first output)
 *   outputs    {field: onnx output}: store an object of several outputs (jsonb),
 *              e.g. {"label": "output_label", "probabilities": "output_probability"}
 *   tokenizer  {"type": "words", "vocab_size": N, "max_length": L} for text rows
 *   threads    intra-op threads (default: onnxruntime's choice)
 * See onnx-feeds.ts for how rows become inputs.
 */
interface OnnxConfig {
  input?: string;
  inputs?: Record<string, string[]>;
  output?: string;
  outputs?: Record<string, string>;
  tokenizer?: WordTokenizerConfig;
  threads?: number;
}

export class OnnxRuntime implements ModelRuntime {
  readonly name = 'onnx';

  async load(model: ModelRecord, context: RuntimeContext): Promise<LoadedModel> {
    if (!model.artifact) throw new Error(`ONNX model "${model.name}" has no artifact (the .onnx file)`);
    const config = model.config as OnnxConfig;
    const { bytes, zipMaps } = exposeZipMapInputs(await context.fetchArtifact(model.artifact));
    const session = await ort.InferenceSession.create(bytes, {
      ...(config.threads ? { intraOpNumThreads: config.threads } : {}),
      graphOptimizationLevel: 'all',
      // onnxruntime's pool threads spin between runs by default: on a sidecar
      // beside its database (or sharing cores with its own event loop, which
      // serialises and writes while the model runs) that is CPU taken from both.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    // The graph's outputs as its author named them (ZipMaps in place of the tensors exposed for them).
    const outputNames = [...session.outputNames.filter((name) => !zipMaps.some((z) => z.tensor === name)), ...zipMaps.map((z) => z.name)];
    // Where each requested output is read from (a ZipMap's from its input tensor).
    const source = (name: string) => {
      const zipMap = zipMaps.find((z) => z.name === name);
      if (!zipMap && !session.outputNames.includes(name)) {
        throw new Error(`ONNX model "${model.name}": no output named "${name}" (outputs: ${outputNames.join(', ')})`);
      }
      return { tensor: zipMap?.tensor ?? name, zipMap };
    };
    const fields: Array<[string | null, ReturnType<typeof source>]> = config.outputs
      ? Object.entries(config.outputs).map(([field, name]) => [field, source(name)])
      : !config.output && model.output.type === 'jsonb' && outputNames.length > 1
        ? outputNames.map((name) => [name, source(name)])
        : [[null, source(config.output ?? outputNames[0]!)]];
    const fetches = [...new Set(fields.map(([, s]) => s.tensor))];

    const types = new Map<string, TensorType>();
    for (const meta of session.inputMetadata) types.set(meta.name, meta.isTensor ? (meta.type as TensorType) : 'float32');
    const feeds = feedBuilder(model.name, config, session.inputNames, types);

    return {
      async predict(inputs) {
        const results = await session.run(feeds(inputs), fetches);
        const columns = fields.map(([field, s]) => [field, splitRows(results[s.tensor] as ort.Tensor, inputs.length, model.name, s.zipMap)] as const);
        if (columns.length === 1 && columns[0]![0] === null) return columns[0]![1];
        return inputs.map((_, row) => Object.fromEntries(columns.map(([field, values]) => [field, values[row]])));
      },
      async close() {
        await session.release();
      },
    };
  }
}
