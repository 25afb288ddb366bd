import type { Document } from 'mongodb';

/** Where the query vector goes in a stored pipeline (superduper.vector_indexes' `score_stages`). */
export const QUERY_PLACEHOLDER = '$$superduper.query';

/**
 * The aggregation stages that score every output against a query vector, with
 * the vector left as a placeholder: stored with the vector index, so that the
 * mongosh snippet (mongosh/superduper.js) and TypeScript run the very same
 * pipeline. An exact search: it reads every output of the listener, O(n × dim)
 * arithmetic on the server (docs/mongodb.md, "Search").
 *
 * Scores are "higher is nearer", as superduper.like's on PostgreSQL: cosine
 * similarity, the inner product, or the negated Euclidean distance.
 */
export function scoreStages(measure: 'cosine' | 'l2' | 'ip', dim: number): Document[] {
  const q = { $literal: QUERY_PLACEHOLDER };
  const sum = (term: (i: string) => Document) => ({
    $reduce: { input: { $range: [0, dim] }, initialValue: 0, in: { $add: ['$$value', term('$$this')] } },
  });
  const at = (array: unknown, i: string) => ({ $arrayElemAt: [array, i] });
  const dot = sum((i) => ({ $multiply: [at('$output', i), at(q, i)] }));
  let score: Document;
  if (measure === 'ip') score = dot;
  else if (measure === 'l2') {
    score = { $multiply: [-1, { $sqrt: sum((i) => ({ $pow: [{ $subtract: [at('$output', i), at(q, i)] }, 2] })) }] };
  } else {
    const norm = (array: unknown) => ({ $sqrt: sum((i) => ({ $multiply: [at(array, i), at(array, i)] })) });
    score = {
      $let: {
        vars: { d: dot, n: { $multiply: [norm('$output'), norm(q)] } },
        in: { $cond: [{ $eq: ['$$n', 0] }, 0, { $divide: ['$$d', '$$n'] }] },
      },
    };
  }
  return [{ $match: { output: { $type: 'array' } } }, { $addFields: { score } }];
}

/** The stored stages with the query vector in place of the placeholder. */
export function withQuery(stages: Document[], vector: readonly number[]): Document[] {
  const fill = (node: unknown): unknown => {
    if (node === QUERY_PLACEHOLDER) return [...vector];
    if (Array.isArray(node)) return node.map(fill);
    if (node && typeof node === 'object' && Object.getPrototypeOf(node) === Object.prototype) {
      return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, fill(value)]));
    }
    return node;
  };
  return fill(stages) as Document[];
}

/**
 * The whole search: an optional pre-filter on the source documents (a MongoDB
 * query on their fields, joined by _id), the scores, the k best.
 */
export function searchPipeline(options: { stages: Document[]; vector: readonly number[]; k: number; source: string; filter?: Document }): Document[] {
  const filter = options.filter && Object.keys(options.filter).length > 0 ? options.filter : undefined;
  return [
    ...(filter
      ? [
          { $lookup: { from: options.source, localField: '_id', foreignField: '_id', as: '_source' } },
          { $match: Object.fromEntries(Object.entries(filter).map(([field, value]) => (field.startsWith('$') ? [field, value] : [`_source.${field}`, value]))) },
        ]
      : []),
    ...withQuery(options.stages, options.vector),
    { $sort: { score: -1, _id: 1 } },
    { $limit: options.k },
    { $project: { _id: 1, score: 1 } },
  ];
}
