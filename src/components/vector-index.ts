export interface VectorIndexOptions {
  name: string;
  /** The listener whose outputs (vectors) are searched. */
  listener: string;
  /** The model that embeds queries; default: the listener's model. */
  queryModel?: string;
  /** Or: queries are embedded by this listener's model (text queries over image vectors, say). */
  compatibleListener?: string;
  /** cosine (default), l2 or ip (inner product). */
  measure?: 'cosine' | 'l2' | 'ip';
  /** HNSW parameters: m (16), ef_construction (64), and ef_search (100) used by searches. */
  index?: { m?: number; ef_construction?: number; ef_search?: number };
  /**
   * A text search configuration ("english", "simple", ...): full-text search over
   * the listener's text (a GIN index on its key column), for superduper.hybrid().
   */
  fullText?: string;
}

export interface VectorIndexComponent {
  readonly kind: 'vector_index';
  readonly name: string;
  readonly spec: Record<string, unknown>;
}

/**
 * Makes a listener's vectors searchable: an HNSW index on its outputs and the
 * model that embeds queries. Search it with superduper.like() or db.search().
 */
export function vectorIndex(options: VectorIndexOptions): VectorIndexComponent {
  return {
    kind: 'vector_index',
    name: options.name,
    spec: {
      type: 'vector_index',
      name: options.name,
      listener: options.listener,
      ...(options.queryModel ? { query_model: options.queryModel } : {}),
      ...(options.compatibleListener ? { compatible_listener: options.compatibleListener } : {}),
      ...(options.measure ? { measure: options.measure } : {}),
      ...(options.index ? { index: options.index } : {}),
      ...(options.fullText ? { full_text: options.fullText } : {}),
    },
  };
}
