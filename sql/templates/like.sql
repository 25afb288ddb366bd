-- superduper.like() in both forms and the search dispatch they share, rendered
-- by superduper._like_render (sql/functions/075_like.sql) at install and again
-- whenever the vector indexes change, with {{vector_type}} (pgvector's type in
-- whatever schema it lives in: their signatures name it), and the dispatch: a
-- branch per current index calling its search function by name, so that
-- PL/pgSQL caches each call's plan, by index id (the text form, whose registry
-- lookup reads the embedding cache too) or by index name (the vector form,
-- which then reads no registry at all).
-- Dynamic SQL (EXECUTE) is parsed and planned on every call: it cost 8% of a
-- search (measured, docs/benchmarks.md); it stays only as the fallback for an
-- index with no branch yet.

-- The k source rows nearest to a text query: their primary key (id, the key
-- as text when it is one column; key, every column as text) and score (higher
-- is nearer: 1 - cosine distance, -L2 distance, or the inner product).
--   SELECT d.title, l.score
--   FROM superduper.like('docs_index', 'reset my password', 5) AS l
--   JOIN docs d ON d.id = l.id::integer;
-- Like the search functions it calls, it runs with the caller's rights and
-- qualifies every name, so it pins no search_path (a SET clause per call costs).
CREATE OR REPLACE FUNCTION superduper.like(p_index text, p_query text, p_k integer DEFAULT 10, p_filter jsonb DEFAULT NULL)
RETURNS TABLE (id text, key text[], score double precision)
LANGUAGE plpgsql STABLE
AS {{q}}
DECLARE
  q record;
  v_query {{vector_type}};
  v_index integer;
BEGIN
  SELECT * INTO q FROM superduper._like_query(p_index, p_k, p_query);
  v_index := q.index_id;
  v_query := q.embedding::{{vector_type}};
  {{dispatch_id}}
END
{{q}};

-- The same with the query given as a vector.
CREATE OR REPLACE FUNCTION superduper.like(p_index text, p_query {{vector_type}}, p_k integer DEFAULT 10, p_filter jsonb DEFAULT NULL)
RETURNS TABLE (id text, key text[], score double precision)
LANGUAGE plpgsql STABLE
AS {{q}}
DECLARE
  v_query {{vector_type}} := p_query;
  v_index integer;
BEGIN
  IF p_query IS NULL THEN
    RAISE EXCEPTION 'superduper.like: index "%": the query is NULL', p_index;
  END IF;
  IF p_k IS NULL OR p_k < 1 OR p_k > 1000 THEN
    PERFORM superduper._like_index(p_index, p_k); -- raises the error that says which
  END IF;
  -- The index found by its name, without a registry lookup (search functions
  -- check the query's dimension themselves).
  {{dispatch_name}}
END
{{q}};

-- Calls the index's search function (filtered or not) through dynamic SQL: the
-- fallback of the dispatch above, for an index it has no branch for.
CREATE OR REPLACE FUNCTION superduper._like_search(p_index integer, p_query {{vector_type}}, p_k integer, p_filter jsonb)
RETURNS TABLE (id text, key text[], score double precision)
LANGUAGE plpgsql STABLE
AS {{q}}
BEGIN
  IF p_filter IS NULL THEN
    RETURN QUERY EXECUTE pg_catalog.format('SELECT * FROM superduper.%I($1, $2)', '_vi' || p_index || '_search')
      USING p_query, p_k;
  ELSE
    RETURN QUERY EXECUTE pg_catalog.format('SELECT * FROM superduper.%I($1, $2, $3)', '_vi' || p_index || '_search_filtered')
      USING p_query, p_k, p_filter;
  END IF;
END
{{q}};
