-- The full-text half of superduper.hybrid() for one vector index declared with
-- "full_text": the p_n rows of the index's source whose text (the listener's
-- key column, as its vector was computed from: the words stored beside the
-- vector, see text_words.sql) best matches p_query, by PostgreSQL's own text
-- search, through a GIN index on those words; rows whose source row is gone
-- are left out, as in like(). A row matches if it has any word of the
-- query (its lexemes, stop words left out, ORed: a question's words rarely
-- all occur in the passage that answers it, and ANDed they matched none of the
-- test set's questions); ts_rank_cd ranks rows with more of them, closer
-- together, higher. Keys as superduper.like() gives them; ties broken by key,
-- so ranks are stable. With a filter (JSON, see superduper._filter_sql), the
-- filtered form.
--
-- Like the search functions, they run with the caller's rights (the caller
-- needs SELECT on the source) and qualify every name.
CREATE FUNCTION {{fn_text}}(p_query text, p_n integer)
RETURNS TABLE (id text, key text[], score double precision)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS {{q}}
#variable_conflict use_column
BEGIN
  -- The source row is looked up for the p_n best only, not for every match (a
  -- common word matches thousands of chunks): an output whose row is gone, for
  -- the moment until the sidecar removes it, is left out, so the half can
  -- return fewer than p_n then, never a row that is gone.
  RETURN QUERY
  SELECT {{id_o}}, {{key_o}}, o._superduper_text_score
  FROM (
    SELECT {{pk_order_o}}, pg_catalog.ts_rank_cd({{words_o}}, t.q)::double precision AS _superduper_text_score
    FROM {{outputs}} AS o, (SELECT {{tsquery}} AS q) AS t
    WHERE {{words_o}} OPERATOR(pg_catalog.@@) t.q
    ORDER BY _superduper_text_score DESC, {{pk_order_o}}
    LIMIT p_n
  ) AS o
  WHERE (SELECT true FROM {{source}} AS src WHERE {{pk_eq_src_o}})
  ORDER BY o._superduper_text_score DESC, {{pk_order_o}};
END
{{q}};

CREATE FUNCTION {{fn_text_filtered}}(p_query text, p_n integer, p_filter jsonb)
RETURNS TABLE (id text, key text[], score double precision)
LANGUAGE plpgsql STABLE
AS {{q}}
#variable_conflict use_column
DECLARE
  v_filter text := superduper._filter_sql({{index_name}}, {{source_regclass}}, p_filter);
BEGIN
  RETURN QUERY EXECUTE pg_catalog.format({{text_filtered_sql}}, v_filter) USING p_query, p_n;
END
{{q}};
