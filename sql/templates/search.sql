-- The search behind superduper.like() for one vector index: the k outputs
-- nearest to p_query, joined to their source rows (so the caller needs SELECT on
-- the source table: no row is returned to a role that may not read it).
--
-- With a filter (JSON, see superduper._filter_sql), pgvector's iterative index
-- scan reads the HNSW graph until k rows pass the filter; if it stops short
-- (hnsw.max_scan_tuples), an exact search over the rows passing the filter gives
-- the true top k. So a filtered search returns k rows whenever k rows match.
CREATE FUNCTION {{fn_search}}(p_query {{vector_type}}, p_k integer, p_filter jsonb)
RETURNS TABLE (id text, key text[], score double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET hnsw.ef_search = {{ef_search}}
SET hnsw.iterative_scan = strict_order
AS {{q}}
#variable_conflict use_column
DECLARE
  v_filter text;
  v_hits superduper._hit[];
BEGIN
  IF p_filter IS NULL THEN
    RETURN QUERY
    SELECT {{id_o}}, {{key_o}}, {{score_o}}
    FROM {{outputs}} AS o
    WHERE EXISTS (SELECT 1 FROM {{source}} AS src WHERE {{pk_eq_src_o}})
    ORDER BY {{distance_o}}
    LIMIT p_k;
    RETURN;
  END IF;

  v_filter := superduper._filter_sql({{index_name}}, {{source_regclass}}, p_filter);
  EXECUTE format('SELECT array_agg(ROW(h.id, h.key, h.score)::superduper._hit ORDER BY h.score DESC) FROM (%s) AS h',
                 format({{filtered_sql}}, v_filter, {{distance_param}}))
  INTO v_hits USING p_query, p_k;
  IF coalesce(cardinality(v_hits), 0) < p_k THEN
    -- "+ 0" makes the distance unusable by the index: an exact scan.
    EXECUTE format('SELECT array_agg(ROW(h.id, h.key, h.score)::superduper._hit ORDER BY h.score DESC) FROM (%s) AS h',
                   format({{filtered_sql}}, v_filter, {{distance_param}} || ' + 0'))
    INTO v_hits USING p_query, p_k;
  END IF;
  RETURN QUERY SELECT h.id, h.key, h.score FROM unnest(v_hits) AS h;
END
{{q}};
