import type { ModelRuntime } from './types.js';
import { AnthropicRuntime } from './api/anthropic.js';
import { CohereRuntime } from './api/cohere.js';
import { ChunkerRuntime } from './chunker-runtime.js';
import { OpenAiRuntime } from './api/openai.js';
import { OnnxRuntime } from './onnx-runtime.js';
import { TextEmbedderRuntime } from './text-embedder-runtime.js';
import { TrainedRuntime } from './trained-runtime.js';
import { TransformersRuntime } from './transformers-runtime.js';

/**
 * The model runtimes every sidecar has, besides the function runtime (which is
 * per process). One line per runtime; the SQL layer's superduper._runtimes()
 * lists the same names, so that a typo fails at apply time.
 */
export function builtinRuntimes(): ModelRuntime[] {
  return [new OnnxRuntime(), new TextEmbedderRuntime(), new OpenAiRuntime(), new AnthropicRuntime(), new CohereRuntime(), new TransformersRuntime(), new ChunkerRuntime(), new TrainedRuntime()];
}
