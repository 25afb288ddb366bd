-- The search behind superduper.like() for one vector index: the k outputs
-- nearest to p_query, joined to their source rows (so the caller needs SELECT on
-- the source table: no row is returned to a role that may not read it).
--
-- Two functions, because the setting that makes filtered searches correct costs
-- unfiltered ones ~20% (measured): {{fn_search}} has no filter; with a filter
-- (JSON, see superduper._filter_sql), {{fn_search_filtered}} lets pgvector's
-- iterative index scan read the HNSW graph until k rows pass the filter, and if
-- that stops short (hnsw.max_scan_tuples), an exact search over the rows passing
-- the filter gives the true top k. So a filtered search returns k rows whenever
-- k rows match.
--
-- No pinned search_path: they run with the caller's rights only, every name in
-- them is qualified, and a SET clause costs each call (they are the hot path).
--
-- The unfiltered search keeps one generic plan: left to choose, PostgreSQL
-- re-plans it on every call (a custom plan for LIMIT 10 looks cheaper than a
-- generic one for an unknown LIMIT), which measured 0.3 ms of a 1 ms search.
-- The source row is checked by a scalar subquery, not EXISTS, so that no plan
-- can become a hash join reading the whole source table: whatever the LIMIT is
-- guessed to be, each of the k outputs costs one primary-key probe.
--
-- An HNSW scan can come back with fewer than k rows while k rows exist: its
-- graph search visits a neighbourhood, not the table, so a row it cannot reach
-- (many equal vectors weaken the graph), row versions dead but not yet
-- vacuumed, and outputs whose source row is gone all leave fewer than k. So
-- the hits are gathered first, and a short list is searched again by the
-- filtered form with no filter: an iterative scan, then the exact search.
-- Gathering the hits before returning them costs nothing measurable (1,000
-- calls, 384 dimensions: 1.65-1.71 ms a call against 1.66-1.78 returned directly).
CREATE FUNCTION {{fn_search}}(p_query {{vector_type}}, p_k integer)
RETURNS TABLE (id text, key text[], score double precision)
LANGUAGE plpgsql STABLE
SET hnsw.ef_search = {{ef_search}}
SET plan_cache_mode = force_generic_plan
AS {{q}}
#variable_conflict use_column
DECLARE
  v_hits superduper._hit[];
BEGIN
  -- The query's dimension, checked here (this function is rendered again
  -- whenever its listener's outputs change) rather than by like() from the registry.
  IF {{vector_dims}}(p_query) <> {{dim}} THEN
    RAISE EXCEPTION 'superduper.like: index "%" holds vectors of % dimensions; the query has %', {{index_name}}, {{dim}}, {{vector_dims}}(p_query);
  END IF;
  -- The index orders by its own distance arithmetic, which can differ from the
  -- score's in the last bits: the k hits are sorted by score, so that scores are
  -- always in order.
  SELECT pg_catalog.array_agg(ROW(h.id, h.key, h.score)::superduper._hit ORDER BY h.score DESC) INTO v_hits
  FROM (
    SELECT {{id_o}} AS id, {{key_o}} AS key, {{score_o}} AS score
    FROM {{outputs}} AS o
    WHERE (SELECT true FROM {{source}} AS src WHERE {{pk_eq_src_o}})
    ORDER BY {{distance_o}}
    LIMIT p_k
  ) AS h;
  IF coalesce(pg_catalog.cardinality(v_hits), 0) < p_k THEN
    RETURN QUERY SELECT * FROM {{fn_search_filtered}}(p_query, p_k, '{}');
    RETURN;
  END IF;
  RETURN QUERY SELECT h.id, h.key, h.score FROM pg_catalog.unnest(v_hits) AS h;
END
{{q}};

CREATE FUNCTION {{fn_search_filtered}}(p_query {{vector_type}}, p_k integer, p_filter jsonb)
RETURNS TABLE (id text, key text[], score double precision)
LANGUAGE plpgsql STABLE
SET hnsw.ef_search = {{ef_search}}
SET hnsw.iterative_scan = strict_order
AS {{q}}
#variable_conflict use_column
DECLARE
  v_filter text := superduper._filter_sql({{index_name}}, {{source_regclass}}, p_filter);
  v_hits superduper._hit[];
BEGIN
  -- As in the search above.
  IF {{vector_dims}}(p_query) <> {{dim}} THEN
    RAISE EXCEPTION 'superduper.like: index "%" holds vectors of % dimensions; the query has %', {{index_name}}, {{dim}}, {{vector_dims}}(p_query);
  END IF;
  EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(ROW(h.id, h.key, h.score)::superduper._hit ORDER BY h.score DESC) FROM (%s) AS h',
                            pg_catalog.format({{filtered_sql}}, v_filter, {{distance_param}}))
  INTO v_hits USING p_query, p_k;
  IF coalesce(pg_catalog.cardinality(v_hits), 0) < p_k THEN
    -- "+ 0" makes the distance unusable by the index: an exact scan.
    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(ROW(h.id, h.key, h.score)::superduper._hit ORDER BY h.score DESC) FROM (%s) AS h',
                              pg_catalog.format({{filtered_sql}}, v_filter, {{distance_param}} || ' + 0'))
    INTO v_hits USING p_query, p_k;
  END IF;
  RETURN QUERY SELECT h.id, h.key, h.score FROM pg_catalog.unnest(v_hits) AS h;
END
{{q}};
