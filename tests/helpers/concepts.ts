import { functionModel } from '../../src/models/function-runtime.js';

/**
 * A tiny embedder for search tests: one dimension per concept, the words of each
 * concept counted and the vector normalized. Deterministic, so tests know the
 * nearest document. (The real semantic default embedder is tested elsewhere.)
 */
export const concepts: string[][] = [
  ['cat', 'cats', 'kitten', 'feline', 'meow'],
  ['dog', 'dogs', 'puppy', 'bark'],
  ['car', 'cars', 'vehicle', 'engine', 'drive'],
  ['stock', 'stocks', 'market', 'shares', 'finance'],
  ['password', 'login', 'account', 'reset'],
  ['pizza', 'pasta', 'cook', 'recipe', 'food'],
];

export function conceptVector(text: string): number[] {
  const words = text.toLowerCase().match(/[a-z]+/g) ?? [];
  const vector = concepts.map((group) => words.filter((w) => group.includes(w)).length + 0.01);
  const norm = Math.hypot(...vector);
  return vector.map((v) => v / norm);
}

export function conceptModel(name = 'concepts') {
  return functionModel({
    name,
    output: { type: 'vector', dim: concepts.length },
    version: 'concepts-v1',
    predict: (texts: string[]) => texts.map(conceptVector),
  });
}
