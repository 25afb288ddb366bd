import { describeError } from '../errors.js';
import { checkOutput } from '../models/output-check.js';
import type { ModelCache } from '../models/registry.js';
import type { ModelRecord } from '../models/types.js';

import type { CallAnswer } from '../backends/backend.js';

export type { CallAnswer };

/**
 * Answers model calls made from SQL (superduper.embed / predict / like) for one
 * model: one predict for all the inputs, each output checked against the
 * model's declared output and made JSON. Used by the sidecar's request server
 * and by the embedded database's host.
 */
export async function answerModelCalls(models: ModelCache, model: ModelRecord, inputs: readonly unknown[]): Promise<CallAnswer[]> {
  try {
    const loaded = await models.get(model);
    const outputs = await loaded.predict(inputs);
    if (!Array.isArray(outputs) || outputs.length !== inputs.length) {
      throw new Error(`model "${model.name}" returned ${Array.isArray(outputs) ? outputs.length : 'no'} outputs for ${inputs.length} inputs`);
    }
    return outputs.map((output) => {
      try {
        const checked = checkOutput(output, model.output, model.name);
        // Vectors travel as JSON arrays, each number with 9 significant digits:
        // enough to give back the same float4, and short enough for a 384-d
        // answer to fit in a NOTIFY payload (with full precision it would not).
        const value =
          model.output.type === 'vector'
            ? Array.from(checked as ArrayLike<number>, (x) => Number(x.toPrecision(9)))
            : model.output.type === 'jsonb'
              ? JSON.parse(checked as string)
              : checked;
        return { ok: true as const, value };
      } catch (error) {
        return { ok: false as const, error: (error as Error).message };
      }
    });
  } catch (error) {
    return inputs.map(() => ({ ok: false as const, error: describeError(error) }));
  }
}
