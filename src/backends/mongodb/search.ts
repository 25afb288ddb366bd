import { describeError, SuperduperError } from '../../errors.js';
import type { ModelCalls, Search } from '../backend.js';
import type { SearchHit } from '../types.js';
import { collection, type MongoContext } from './context.js';
import type { ListenerDoc, ModelDoc, VectorIndexDoc } from './documents.js';
import { keyText } from './keys.js';
import { COLLECTIONS } from './names.js';
import { scoreStages, searchPipeline } from './search-pipeline.js';
import type { VectorIndexSpec } from './specs.js';

/**
 * A $vectorSearch index on a listener's outputs, where the server has them
 * (Atlas, or a MongoDB with mongot); elsewhere searches are exact, and the
 * vector index says so in its note.
 */
export async function createSearchIndex(
  context: MongoContext,
  outputs: string,
  spec: VectorIndexSpec,
  dim: number,
): Promise<{ kind: 'vector_search' | 'exact'; note: string | null }> {
  const similarity = spec.measure === 'l2' ? 'euclidean' : spec.measure === 'ip' ? 'dotProduct' : 'cosine';
  try {
    await context.db.collection(outputs).createSearchIndex({
      name: `superduper_${spec.name}`,
      type: 'vectorSearch',
      definition: { fields: [{ type: 'vector', path: 'output', numDimensions: dim, similarity }] },
    });
    return { kind: 'vector_search', note: null };
  } catch (error) {
    return { kind: 'exact', note: `exact search: this server has no $vectorSearch (${describeError(error)})` };
  }
}

/** The stages a vector index's searches run, stored with it for the mongosh snippet. */
export function storedStages(measure: VectorIndexSpec['measure'], dim: number) {
  return scoreStages(measure, dim);
}

export function mongoSearch(context: MongoContext, modelCalls: ModelCalls): Search {
  const indexes = collection<VectorIndexDoc>(context, COLLECTIONS.vectorIndexes);
  const listeners = collection<ListenerDoc>(context, COLLECTIONS.listeners);
  const models = collection<ModelDoc>(context, COLLECTIONS.models);
  return {
    async like(index, query, options) {
      const k = options.k ?? 10;
      if (!Number.isInteger(k) || k < 1 || k > 1000) throw new SuperduperError(`superduper.like: k must be a whole number from 1 to 1000, not ${k}`);
      const doc = await indexes.findOne({ _id: index });
      if (!doc) throw new SuperduperError(`superduper.like: no vector index named '${index}'`, { hint: 'See db.superduper.vector_indexes in mongosh.' });
      const listener = (await listeners.findOne({ name: doc.listener, state: 'current' })) ?? (await listeners.findOne({ name: doc.listener, state: 'frozen' }));
      if (!listener) throw new SuperduperError(`superduper.like: vector index '${index}': listener '${doc.listener}' has no current version`);
      const model = await models.findOne({ _id: listener.model });
      const dim = model?.output.type === 'vector' ? model.output.dim : 0;
      const vector = typeof query === 'string' ? await embed(modelCalls, doc.query_model ?? listener.model, query) : Array.from(query);
      if (vector.length !== dim) {
        throw new SuperduperError(`superduper.like: vector index '${index}' holds vectors of ${dim} dimensions; the query has ${vector.length}`);
      }
      const pipeline =
        // $vectorSearch filters on fields of its index, not of the source documents.
        doc.search === 'vector_search' && !options.filter
          ? vectorSearchPipeline(doc, vector, k, options.filter)
          : searchPipeline({ stages: scoreStages(doc.measure, dim), vector, k, source: listener.collection, filter: options.filter });
      const hits = await context.db.collection(listener.outputs).aggregate<{ _id: unknown; score: number }>(pipeline).toArray();
      return hits.map((hit): SearchHit => {
        const text = keyText(hit._id);
        return { id: text, key: [text], score: hit.score };
      });
    },
  };
}

async function embed(modelCalls: ModelCalls, model: string, text: string): Promise<number[]> {
  const vector = await modelCalls.predict(model, text);
  if (!Array.isArray(vector)) throw new SuperduperError(`superduper.like: model "${model}" did not return a vector for the query`);
  return vector as number[];
}

/** Atlas's approximate search (not run on these machines: no server here has it). */
function vectorSearchPipeline(doc: VectorIndexDoc, vector: number[], k: number, filter: Record<string, unknown> | undefined) {
  return [
    {
      $vectorSearch: {
        index: `superduper_${doc.name}`,
        path: 'output',
        queryVector: vector,
        numCandidates: Math.max(100, k * 10),
        limit: k,
        ...(filter ? { filter } : {}),
      },
    },
    { $project: { _id: 1, score: { $meta: 'vectorSearchScore' } } },
  ];
}
