-- The full-text half of superduper.hybrid() for one vector index declared with
-- "full_text": the p_n rows of the index's source whose text (the listener's
-- key column, as its vector was computed from: the words stored beside the
-- vector, see text_words.sql) best matches p_query, by PostgreSQL's own text
-- search, through a GIN index on those words; rows whose source row is gone
-- are left out, as in like(). A row matches if it has any word of the
-- query that is not common (its lexemes, stop words left out, ORed: a
-- question's words rarely all occur in the passage that answers it, and ANDed
-- they matched none of the test set's questions; common words: see
-- superduper._text_queries).
--
-- ts_rank ranks rows holding more of every word of the query, more often,
-- higher (ts_rank_cd, which also weighs how close together they are, cost
-- three times as much and found the same chunks on the test set). Keys as
-- superduper.like() gives them; ties broken by key, so ranks are stable.
--
-- Every candidate was read and ranked to keep the best p_n (345 a question on
-- the benchmark's 26,546 chunks, most of the half's time), but ts_rank of an
-- ORed query ranks every row holding two of its words above every row holding
-- one: it gives a word 0.61 of its weight for one occurrence and never more
-- than its weight for any number, and the words here all weigh the same (D:
-- to_tsvector's, text_words.sql). So the rows holding two are read first
-- (superduper._text_queries' pair_query: on the benchmark, 28 to 88 a
-- question), and the others only when those are fewer than p_n: the same rows
-- in the same order, for a fraction of the reading. With a filter (JSON, see
-- superduper._filter_sql), the filtered form, in one statement: the filter
-- bounds its candidates.
--
-- Like the search functions, they run with the caller's rights (the caller
-- needs SELECT on the source) and qualify every name.
CREATE FUNCTION {{fn_text}}(p_query text, p_n integer)
RETURNS TABLE (id text, key text[], score double precision)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS {{q}}
#variable_conflict use_column
DECLARE
  -- Parsed once here, not in the query: a tsquery computed in the query was
  -- parsed again for every row ranked, which cost more than the ranking.
  t record := superduper._text_queries({{index_id}}, {{outputs_regclass}}, {{config}}, p_query, p_n);
  v_first integer := 0;
BEGIN
  -- The source row is looked up for the p_n best only, not for every match (a
  -- common word matches thousands of chunks): an output whose row is gone, for
  -- the moment until the sidecar removes it, is left out, so the half can
  -- return fewer than p_n then, never a row that is gone.
  IF t.pair_query IS NOT NULL THEN
    RETURN QUERY
    SELECT {{id_o}}, {{key_o}}, o._superduper_text_score
    FROM (
      SELECT {{pk_order_o}}, pg_catalog.ts_rank({{words_o}}, t.rank_query)::double precision AS _superduper_text_score
      FROM {{outputs}} AS o
      WHERE {{words_o}} OPERATOR(pg_catalog.@@) t.pair_query
      ORDER BY _superduper_text_score DESC, {{pk_order_o}}
      LIMIT p_n
    ) AS o
    WHERE (SELECT true FROM {{source}} AS src WHERE {{pk_eq_src_o}})
    ORDER BY o._superduper_text_score DESC, {{pk_order_o}};
    GET DIAGNOSTICS v_first = ROW_COUNT;
    IF v_first >= p_n THEN
      RETURN;
    END IF;
  END IF;
  RETURN QUERY
  SELECT {{id_o}}, {{key_o}}, o._superduper_text_score
  FROM (
    SELECT {{pk_order_o}}, pg_catalog.ts_rank({{words_o}}, t.rank_query)::double precision AS _superduper_text_score
    FROM {{outputs}} AS o
    WHERE {{words_o}} OPERATOR(pg_catalog.@@) t.match_query
      AND (t.pair_query IS NULL OR NOT {{words_o}} OPERATOR(pg_catalog.@@) t.pair_query)
    ORDER BY _superduper_text_score DESC, {{pk_order_o}}
    LIMIT p_n - v_first
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
  t record := superduper._text_queries({{index_id}}, {{outputs_regclass}}, {{config}}, p_query, p_n);
BEGIN
  RETURN QUERY EXECUTE pg_catalog.format({{text_filtered_sql}}, v_filter) USING t.match_query, p_n, t.rank_query;
END
{{q}};
