-- superduper.like() in both forms and the search dispatch they share, rendered at
-- install by sql/functions/075_like.sql with {{vector_type}} (pgvector's type in
-- whatever schema it lives in: their signatures name it) and {{vector_schema}}.

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
BEGIN
  SELECT * INTO q FROM superduper._like_query(p_index, p_k, p_query);
  RETURN QUERY SELECT * FROM superduper._like_search(q.index_id, q.embedding::{{vector_type}}, p_k, p_filter);
END
{{q}};

-- The same with the query given as a vector.
CREATE OR REPLACE FUNCTION superduper.like(p_index text, p_query {{vector_type}}, p_k integer DEFAULT 10, p_filter jsonb DEFAULT NULL)
RETURNS TABLE (id text, key text[], score double precision)
LANGUAGE plpgsql STABLE
AS {{q}}
DECLARE
  v superduper._vector_indexes := superduper._like_index(p_index, p_k);
  v_dim integer := superduper._model_dim(v.query_model);
BEGIN
  IF p_query IS NULL THEN
    RAISE EXCEPTION 'superduper.like: index "%": the query is NULL', p_index;
  END IF;
  IF {{vector_schema}}.vector_dims(p_query) <> v_dim THEN
    RAISE EXCEPTION 'superduper.like: index "%" holds vectors of % dimensions; the query has %', p_index, v_dim, {{vector_schema}}.vector_dims(p_query);
  END IF;
  RETURN QUERY SELECT * FROM superduper._like_search(v.id, p_query, p_k, p_filter);
END
{{q}};

-- Calls the index's search function (filtered or not).
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
