-- superduper.hybrid(), rendered at install by sql/functions/076_hybrid.sql with
-- {{vector_type}} (pgvector's type, which the vector search's signature names).
--
-- The k rows that best match a text query by meaning and by words: the index's
-- vector search and its full-text search (declared with "full_text") each give
-- their top p_candidates, and reciprocal rank fusion orders the union (the
-- index's own function, hybrid_search.sql):
--   score = vector_weight / (rrf_k + vector_rank) + text_weight / (rrf_k + text_rank)
-- (a rank missing from one list adds nothing). The filter applies to both
-- halves, as in like(). vector_rank and text_rank (1 = best, NULL = not in that
-- list) say where each hit came from.
--   SELECT h.key, c.output, h.score
--   FROM superduper.hybrid('chunk_index', 'reset my password', 5) AS h
--   JOIN superduper.out_doc_chunks c ON c.id = h.key[1]::int AND c._position = h.key[2]::int;
CREATE OR REPLACE FUNCTION superduper.hybrid(p_index text, p_query text, p_k integer DEFAULT 10, p_filter jsonb DEFAULT NULL,
                                             p_vector_weight double precision DEFAULT 1, p_text_weight double precision DEFAULT 1,
                                             p_candidates integer DEFAULT NULL, p_rrf_k integer DEFAULT 60)
RETURNS TABLE (id text, key text[], score double precision, vector_rank integer, text_rank integer)
LANGUAGE plpgsql STABLE
AS {{q}}
#variable_conflict use_column
DECLARE
  q record;
  -- The default is capped at the most a half may return, so that any k
  -- like() takes (up to 1000) works without naming candidates.
  v_n integer := coalesce(p_candidates, least(greatest(p_k * 4, 40), 1000));
BEGIN
  SELECT * INTO q FROM superduper._hybrid_query(p_index, p_k, p_query, v_n, p_vector_weight, p_text_weight, p_rrf_k);
  RETURN QUERY EXECUTE pg_catalog.format('SELECT * FROM superduper.%I($1, $2, $3, $4, $5, $6, $7, $8)', '_vi' || q.index_id || '_hybrid')
    USING q.embedding::{{vector_type}}, p_query, v_n, p_k, p_filter, p_vector_weight, p_text_weight, p_rrf_k;
END
{{q}};
