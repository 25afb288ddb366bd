import type { Tensor } from '@huggingface/transformers';
import { rerankInput } from './rerank-input.js';

type Transformers = typeof import('@huggingface/transformers');

/** Reranker inputs in ({query, documents}), one array of scores per input out, in document order. */
export interface CrossEncoder {
  (inputs: readonly unknown[]): Promise<number[][]>;
  dispose(): Promise<void>;
}

/**
 * (query, document) pairs per forward pass. The pairs of every input of a
 * batch are pooled and sorted by length before they are cut into passes, so a
 * pass pads its pairs to about the same length: a reranker is asked for tens
 * of passages per query, and one long passage would otherwise make every
 * pair beside it as long.
 */
const PAIRS_PER_PASS = 32;

/**
 * A cross-encoder (ms-marco MiniLM, bge-reranker, ...) from a text-
 * classification folder, for task "rerank": each (query, document) is one
 * input of the model, tokenized as a pair (segment A and B, token_type_ids
 * where the tokenizer gives them), padded, and truncated at the tokenizer's
 * model_max_length (transformers.js cuts the pair's end, that is the
 * document's). A document's score is the logit where the model has one label
 * (ms-marco, bge-reranker), else the softmax probability of the last label
 * (two-label models put "relevant" last). transformers.js's text-
 * classification pipeline is not used: it takes no text pairs.
 */
export async function crossEncoder(transformers: Transformers, model: string, source: string, options: Record<string, unknown>): Promise<CrossEncoder> {
  const [tokenizer, network] = await Promise.all([
    transformers.AutoTokenizer.from_pretrained(source, options),
    transformers.AutoModelForSequenceClassification.from_pretrained(source, options),
  ]);
  const score = async (inputs: readonly unknown[]): Promise<number[][]> => {
    const requests = inputs.map((input) => rerankInput(model, input));
    const scores = requests.map((request) => new Array<number>(request.documents.length));
    const pairs = requests.flatMap(({ query, documents }, input) => documents.map((document, index) => ({ input, index, query, document })));
    pairs.sort((a, b) => a.query.length + a.document.length - (b.query.length + b.document.length));
    for (let from = 0; from < pairs.length; from += PAIRS_PER_PASS) {
      const pass = pairs.slice(from, from + PAIRS_PER_PASS);
      const encoded = tokenizer(
        pass.map((pair) => pair.query),
        { text_pair: pass.map((pair) => pair.document), padding: true, truncation: true },
      );
      const { logits } = (await network(encoded)) as { logits: Tensor };
      const labels = logits.dims.at(-1)!;
      if (logits.dims.length !== 2 || logits.dims[0] !== pass.length) {
        throw new Error(`reranker "${model}" gave logits of shape [${logits.dims.join(', ')}]; a cross-encoder gives [pairs, labels]`);
      }
      const data = logits.data as Float32Array;
      pass.forEach((pair, row) => {
        scores[pair.input]![pair.index] = labels === 1 ? data[row]! : lastLabelProbability(data.subarray(row * labels, (row + 1) * labels));
      });
    }
    return scores;
  };
  return Object.assign(score, {
    async dispose() {
      await network.dispose();
    },
  });
}

/** softmax(logits)[last], computed stably (shifted by the largest logit). */
function lastLabelProbability(logits: Float32Array): number {
  const top = Math.max(...logits);
  let sum = 0;
  for (const logit of logits) sum += Math.exp(logit - top);
  return Math.exp(logits.at(-1)! - top) / sum;
}
