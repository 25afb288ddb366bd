import { functionModel, type FunctionModel } from '../models/function-runtime.js';

/**
 * NOT a language model: a stand-in for one, so that the demo (and tests) can
 * run retrieval-augmented generation with no network and no weights. Given a
 * RAG prompt (superduper.rag_default_prompt(): numbered passages, then the
 * question), it "answers" by quoting the passage sharing the most words with
 * the question, and cites it as [n]; with no passage sharing a word, it says it
 * does not know. Deterministic, so its citations can be checked.
 */
export function standInAnswer(prompt: string): string {
  const question = /Question:\s*([\s\S]*?)\s*(?:\nAnswer:|$)/.exec(prompt)?.[1] ?? '';
  // A passage runs from its "[n] " to the next blank line (rag_context puts one between passages).
  const passages = [...prompt.matchAll(/(?:^|\n)\[(\d+)\] ([\s\S]*?)(?=\n\n|$)/g)].map((m) => ({ n: m[1]!, text: m[2]! }));
  const words = (text: string) => new Set(text.toLowerCase().match(/[a-z0-9]{3,}/g) ?? []);
  const asked = words(question);
  let best: { n: string; text: string; score: number } | undefined;
  for (const passage of passages) {
    let score = 0;
    for (const word of words(passage.text)) if (asked.has(word)) score++;
    if (score > 0 && (!best || score > best.score)) best = { ...passage, score };
  }
  return best ? `${best.text} [${best.n}]` : 'I do not know: the passages do not say.';
}

/** The stand-in as a model (runtime "function": it runs in the process that applied it). */
export function standInLlm(name = 'stand-in-llm'): FunctionModel {
  return functionModel({
    name,
    output: { type: 'text' },
    version: '1',
    predict: (prompts: string[]) => prompts.map(standInAnswer),
  });
}
