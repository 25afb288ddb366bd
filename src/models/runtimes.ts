import type { ModelRuntime } from './types.js';
import { OnnxRuntime } from './onnx-runtime.js';
import { TextEmbedderRuntime } from './text-embedder-runtime.js';

/**
 * The model runtimes every sidecar has, besides the function runtime (which is
 * per process). One line per runtime; the SQL layer's superduper._runtimes()
 * lists the same names, so that a typo fails at apply time.
 */
export function builtinRuntimes(): ModelRuntime[] {
  return [new OnnxRuntime(), new TextEmbedderRuntime()];
}
