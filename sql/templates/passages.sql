-- The passages of one vector index's hits, for rerank() and rag(): the hits
-- of a search ([{"key": [...], ...}, ...]) with the text of each one's passage
-- added ("text": the listener's key column in its source, the text its vector
-- was computed from), in the hits' order, read in one statement. A hit whose
-- row is gone since the search is left out. Rendered per index (by
-- sql/functions/070_vector_indexes.sql) so that the statement is planned once:
-- built and planned again at each call as dynamic SQL, it cost 0.28 ms for
-- five hits, against 0.13 ms (pgbench, the documents benchmark's data). Caller's
-- rights: the caller needs SELECT on the passages' table, as for like().
CREATE FUNCTION {{fn_passages}}(p_hits jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS {{q}}
BEGIN
  RETURN (SELECT coalesce(pg_catalog.jsonb_agg(h.hit OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('text', {{text_src}}::text) ORDER BY h.ord), '[]')
          FROM pg_catalog.jsonb_array_elements(p_hits) WITH ORDINALITY AS h(hit, ord)
          JOIN {{source}} AS src ON {{pk_eq_src_hit}});
END
{{q}};
