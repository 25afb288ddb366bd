-- superduper.hybrid(): vector and full-text search fused by reciprocal rank
-- fusion (../templates/hybrid.sql). The full-text half and the fusion are
-- rendered per vector index declared with "full_text" (../templates/text_search.sql
-- and hybrid_search.sql, from 070_vector_indexes.sql); here: hybrid() itself and
-- the checks of its arguments.

SELECT superduper._template_run('hybrid', jsonb_build_object('vector_type', superduper._vector_type()));

-- Checks hybrid()'s arguments and embeds the query (cached like like()'s). It
-- reads only the registry, so it runs with its owner's rights.
CREATE OR REPLACE FUNCTION superduper._hybrid_query(p_index text, p_k integer, p_query text, p_candidates integer,
                                                    p_vector_weight double precision, p_text_weight double precision, p_rrf_k integer,
                                                    OUT index_id integer, OUT embedding real[])
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v superduper._vector_indexes;
BEGIN
  v := superduper._like_index(p_index, p_k);
  IF v.spec ->> 'full_text' IS NULL THEN
    RAISE EXCEPTION 'superduper.hybrid: vector index "%" has no full-text search', p_index
      USING HINT = 'Declare it: apply the index again with "full_text": "english" (a text search configuration), which adds a GIN index on its text.';
  END IF;
  IF p_candidates IS NULL OR p_candidates < p_k OR p_candidates > 1000 THEN
    RAISE EXCEPTION 'superduper.hybrid: index "%": candidates must be from k (%) to 1000, not %', p_index, p_k, coalesce(p_candidates::text, 'NULL');
  END IF;
  IF p_vector_weight IS NULL OR p_text_weight IS NULL OR p_vector_weight < 0 OR p_text_weight < 0 OR p_vector_weight + p_text_weight = 0 THEN
    RAISE EXCEPTION 'superduper.hybrid: index "%": weights must be at least 0 and not both 0 (vector %, text %)', p_index,
      coalesce(p_vector_weight::text, 'NULL'), coalesce(p_text_weight::text, 'NULL');
  END IF;
  IF p_rrf_k IS NULL OR p_rrf_k < 1 THEN
    RAISE EXCEPTION 'superduper.hybrid: index "%": rrf_k must be a positive integer, not %', p_index, coalesce(p_rrf_k::text, 'NULL');
  END IF;
  SELECT q.index_id, q.embedding INTO index_id, embedding FROM superduper._like_query(p_index, p_k, p_query) AS q;
END
$$;

-- Earlier development builds dispatched each half of hybrid() on its own; the
-- index's hybrid function (../templates/hybrid_search.sql) calls both now.
DROP FUNCTION IF EXISTS superduper._text_search(integer, text, integer, jsonb);
