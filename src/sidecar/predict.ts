import { describeError } from '../errors.js';
import { checkElements, checkOutput } from '../models/output-check.js';
import type { LoadedModel } from '../models/types.js';
import type { ListenerInfo } from './listener-info.js';

export type PredictResult = { ok: true; value: unknown } | { ok: false; error: string };

/**
 * Runs the model on a batch and checks every output against the model's declared
 * output (for a flattened output: a list of elements, see checkElements). If the batch as a whole fails, each row is run alone, so that one bad
 * row fails alone and the others are written.
 */
export async function predictIsolatingFailures(model: LoadedModel, listener: ListenerInfo, inputs: unknown[]): Promise<PredictResult[]> {
  const check = (value: unknown): PredictResult => {
    try {
      const output = listener.output.flatten ? checkElements(value, listener.output, listener.model) : checkOutput(value, listener.output, listener.model);
      return { ok: true, value: output };
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    }
  };
  try {
    const outputs = await model.predict(inputs);
    if (!Array.isArray(outputs) || outputs.length !== inputs.length) {
      throw new Error(
        `model "${listener.model}" returned ${Array.isArray(outputs) ? `${outputs.length} outputs` : `a ${typeof outputs}`} for ${inputs.length} inputs`,
      );
    }
    return outputs.map(check);
  } catch (batchError) {
    if (inputs.length === 1) return [{ ok: false, error: modelError(listener, batchError) }];
    const results: PredictResult[] = [];
    for (const input of inputs) {
      try {
        const outputs = await model.predict([input]);
        results.push(
          outputs.length === 1
            ? check(outputs[0])
            : { ok: false, error: `model "${listener.model}" returned ${outputs.length} outputs for 1 input` },
        );
      } catch (error) {
        results.push({ ok: false, error: modelError(listener, error) });
      }
    }
    return results;
  }
}

function modelError(listener: ListenerInfo, error: unknown): string {
  const message = describeError(error);
  return message.includes(`model "${listener.model}"`) ? message : `model "${listener.model}" failed: ${message}`;
}
