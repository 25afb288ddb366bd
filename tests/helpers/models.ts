import { functionModel, type FunctionModel } from '../../src/models/function-runtime.js';

/** A deterministic 3-d vector from text: length, vowels, digits. */
export function features(text: string): number[] {
  return [text.length, (text.match(/[aeiou]/gi) ?? []).length, (text.match(/\d/g) ?? []).length];
}

/** A function model computing `features`, counting how often each input was computed. */
export function countingFeatureModel(name = 'features'): FunctionModel & { calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const model = functionModel({
    name,
    output: { type: 'vector', dim: 3 },
    predict: (inputs: string[]) =>
      inputs.map((text) => {
        calls.set(text, (calls.get(text) ?? 0) + 1);
        return features(text);
      }),
  });
  return Object.assign(model, { calls });
}
