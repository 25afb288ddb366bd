import type { OutputSpec } from './types.js';

/**
 * Checks one model output against the model's declared output and returns it in
 * the form the write function takes, or throws a message naming what is wrong.
 */
export function checkOutput(output: unknown, spec: OutputSpec, model: string): unknown {
  const fail = (what: string): never => {
    throw new Error(`model "${model}" returned ${what}; its output is declared as ${describeSpec(spec)}`);
  };
  if (output === null || output === undefined) fail(String(output));
  switch (spec.type) {
    case 'vector': {
      if (output instanceof Float32Array || output instanceof Float64Array) {
        if (output.length !== spec.dim) fail(`a vector of ${output.length} numbers`);
        for (let i = 0; i < output.length; i++) if (!Number.isFinite(output[i])) fail(`a vector containing ${output[i]}`);
        return output;
      }
      if (!Array.isArray(output)) fail(`a ${typeof output} where a vector belongs`);
      const vector = output as unknown[];
      if (vector.length !== spec.dim) fail(`a vector of ${vector.length} numbers`);
      for (const value of vector) {
        if (typeof value !== 'number' || !Number.isFinite(value)) fail(`a vector containing ${String(value)}`);
      }
      return vector;
    }
    case 'float':
      if (typeof output !== 'number' || !Number.isFinite(output)) fail(describeValue(output));
      return output;
    case 'integer':
      if (typeof output === 'bigint') return output.toString();
      if (typeof output !== 'number' || !Number.isInteger(output)) fail(describeValue(output));
      return output;
    case 'boolean':
      if (typeof output !== 'boolean') fail(describeValue(output));
      return output;
    case 'text':
      if (typeof output !== 'string') fail(describeValue(output));
      if ((output as string).includes('\u0000')) fail('text containing a NUL character');
      return output;
    case 'jsonb': {
      let text: string | undefined;
      try {
        // Typed arrays (an ONNX output row) are JSON arrays, not {"0": .., "1": ..}.
        text = JSON.stringify(output, (_key, value: unknown) =>
          ArrayBuffer.isView(value) && !(value instanceof DataView) ? Array.from(value as unknown as ArrayLike<number>) : value,
        );
      } catch (error) {
        fail(`a value that is not JSON (${(error as Error).message})`);
      }
      if (text === undefined) fail(describeValue(output));
      return text;
    }
  }
}

/** One element of a flattened output, as the write function takes it: the value and, for a chunk, its lineage. */
export interface Element {
  value: unknown;
  start: number | null;
  end: number | null;
  headings: string[] | null;
}

/**
 * Checks the output of a model whose output is flattened: a list (possibly
 * empty) whose every element is checked like a single output. A text element
 * may be a chunk, {text, start, end, headings}: its text is the value, the rest
 * its lineage.
 */
export function checkElements(output: unknown, spec: OutputSpec, model: string): Element[] {
  if (!Array.isArray(output)) {
    throw new Error(`model "${model}" returned ${output === null || output === undefined ? String(output) : describeValue(output)}; its output is declared as a list (flatten) of ${describeSpec(spec)}`);
  }
  return output.map((item, i) => {
    try {
      if (spec.type === 'text' && typeof item === 'object' && item !== null && !Array.isArray(item) && 'text' in item) {
        const chunk = item as { text: unknown; start?: unknown; end?: unknown; headings?: unknown };
        const span = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null);
        const headings = Array.isArray(chunk.headings) ? chunk.headings.map(String) : null;
        return { value: checkOutput(chunk.text, spec, model), start: span(chunk.start), end: span(chunk.end), headings };
      }
      return { value: checkOutput(item, spec, model), start: null, end: null, headings: null };
    } catch (error) {
      throw new Error(`element ${i} of the list: ${(error as Error).message}`);
    }
  });
}

export function describeSpec(spec: OutputSpec): string {
  return spec.type === 'vector' ? `vector(${spec.dim})` : spec.type;
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `a ${typeof value}`;
}
