import type { Tensor } from '@huggingface/transformers';

type Transformers = typeof import('@huggingface/transformers');

/** Texts in, text_embeds [texts, dim] out, like a feature-extraction pipeline's call. */
export interface TextEmbedder {
  (texts: string[], options: { normalize?: boolean }): Promise<Tensor>;
  dispose(): Promise<void>;
}

/**
 * The text tower of a CLIP folder (onnx/text_model.onnx and a tokenizer beside
 * onnx/vision_model.onnx), for 'feature-extraction'. transformers.js's
 * feature-extraction pipeline would load the whole CLIPModel, which needs an
 * image with every text; text_embeds is the vector CLIP compares with the
 * image_embeds of the same folder's vision tower.
 */
export async function clipTextEmbedder(transformers: Transformers, source: string, options: Record<string, unknown>): Promise<TextEmbedder> {
  const [tokenizer, model] = await Promise.all([
    transformers.AutoTokenizer.from_pretrained(source, options),
    transformers.CLIPTextModelWithProjection.from_pretrained(source, options),
  ]);
  const embed = async (texts: string[], { normalize = false }: { normalize?: boolean }) => {
    const { text_embeds: embeddings } = (await model(tokenizer(texts, { padding: true, truncation: true }))) as { text_embeds: Tensor };
    return normalize ? embeddings.normalize(2, -1) : embeddings;
  };
  return Object.assign(embed, {
    async dispose() {
      await model.dispose();
    },
  });
}
