-- The search behind superduper.hybrid() for one vector index declared with
-- "full_text", rendered beside its vector search (search.sql) and its
-- full-text search (text_search.sql), which it calls by name: the best p_n of
-- each, fused by reciprocal rank fusion into the best p_k:
--   score = vector_weight / (rrf_k + vector_rank) + text_weight / (rrf_k + text_rank)
-- (a rank missing from one list adds nothing). Ranks are 1 for the best, ties
-- broken by key; rows tie-broken by key too, so results are stable.
--
-- One function per index, so that hybrid() makes one dynamic call instead of
-- one per half, and the fusion keeps one generic plan (left to choose,
-- PostgreSQL planned it again at every call). With a filter, each half's
-- filtered form; the other form's branch is not run (a one-time filter).
-- Runs with the caller's rights, as the halves do.
CREATE FUNCTION {{fn_hybrid}}(p_vector {{vector_type}}, p_query text, p_n integer, p_k integer, p_filter jsonb,
                              p_vector_weight double precision, p_text_weight double precision, p_rrf_k integer)
RETURNS TABLE (id text, key text[], score double precision, vector_rank integer, text_rank integer)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS {{q}}
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH v AS (
    SELECT h.id, h.key, pg_catalog.row_number() OVER (ORDER BY h.score DESC, h.key)::integer AS r
    FROM (SELECT * FROM {{fn_search}}(p_vector, p_n) WHERE p_filter IS NULL
          UNION ALL
          SELECT * FROM {{fn_search_filtered}}(p_vector, p_n, p_filter) WHERE p_filter IS NOT NULL) AS h
  ), t AS (
    SELECT h.id, h.key, pg_catalog.row_number() OVER (ORDER BY h.score DESC, h.key)::integer AS r
    FROM (SELECT * FROM {{fn_text}}(p_query, p_n) WHERE p_filter IS NULL
          UNION ALL
          SELECT * FROM {{fn_text_filtered}}(p_query, p_n, p_filter) WHERE p_filter IS NOT NULL) AS h
  )
  SELECT coalesce(v.id, t.id), coalesce(v.key, t.key),
         coalesce(p_vector_weight / (p_rrf_k + v.r), 0) + coalesce(p_text_weight / (p_rrf_k + t.r), 0),
         v.r, t.r
  FROM v FULL JOIN t ON t.key OPERATOR(pg_catalog.=) v.key
  ORDER BY 3 DESC, 2
  LIMIT p_k;
END
{{q}};
