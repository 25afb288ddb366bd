-- Reranking: a reranker (a cross-encoder, or an API such as Cohere's) reads the
-- query beside each passage, which an embedding compared by distance cannot,
-- so it orders a short list better than the search that found it.
-- superduper.rerank() is the final stage of a search: like() or hybrid() finds
-- the top p_candidates, the reranker scores them, the best k are returned.
-- superduper.rerank_scores() scores any passages, for queries of one's own.
--
-- Every reranker takes {"query": text, "documents": [text, ...]} and answers
-- an array of numbers, one per document in order, higher meaning more relevant
-- (src/models/rerank-input.ts): one model call per search, through a sidecar
-- like every model call from SQL (080_model_requests.sql).

-- Where an index's passages live (the source of its listener and the key column
-- it embeds) and how its rows are keyed: for rerank() and rag(). Registry only,
-- so owner's rights.
CREATE OR REPLACE FUNCTION superduper._passage_source(p_index text, p_k integer,
                                                      OUT source text, OUT text_column text, OUT pk text[], OUT pk_types text[], OUT full_text boolean)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v superduper._vector_indexes := superduper._like_index(p_index, p_k);
BEGIN
  SELECT superduper._qualify(l.source_schema, l.source_table), l.keys[1], l.pk, l.pk_types, v.spec ->> 'full_text' IS NOT NULL
  INTO source, text_column, pk, pk_types, full_text
  FROM superduper._listeners l WHERE l.name = v.listener AND l.state = 'current';
END
$$;

-- The hits of a search ([{"key": [...], ...}, ...]) with the text of each
-- one's passage added ("text"), in the hits' order: the index's own passages
-- function (../templates/passages.sql), named by the registry (owner's
-- rights), called with the caller's.
CREATE OR REPLACE FUNCTION superduper._passages_function(p_index text)
RETURNS text
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT format('superduper.%I', '_vi' || (superduper._like_index(p_index, 1)).id || '_passages')
$$;

CREATE OR REPLACE FUNCTION superduper._passages(p_index text, p_hits jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  v_passages jsonb;
BEGIN
  EXECUTE pg_catalog.format('SELECT %s($1)', superduper._passages_function(p_index)) INTO v_passages USING coalesce(p_hits, '[]');
  RETURN v_passages;
END
$$;

-- The hits of an index's search as JSON ([{"id", "key", "score"}, ...], best
-- first): hybrid() or like(), for rerank() and rag(). Caller's rights.
CREATE OR REPLACE FUNCTION superduper._search_hits(p_index text, p_query text, p_n integer, p_filter jsonb, p_hybrid boolean)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  v_hits jsonb;
BEGIN
  IF p_hybrid THEN
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', h.id, 'key', h.key, 'score', h.score) ORDER BY h.score DESC, h.key) INTO v_hits
    FROM superduper.hybrid(p_index, p_query, p_n, p_filter) AS h;
  ELSE
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', h.id, 'key', h.key, 'score', h.score) ORDER BY h.score DESC, h.key) INTO v_hits
    FROM superduper.like(p_index, p_query, p_n, p_filter) AS h;
  END IF;
  RETURN coalesce(v_hits, '[]');
END
$$;

-- Checks that a model can rerank: it exists and outputs JSON (its scores).
CREATE OR REPLACE FUNCTION superduper._reranker(p_function text, p_model text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m superduper._models := superduper._callable_model(p_function, p_model);
BEGIN
  IF m.output ->> 'type' <> 'jsonb' OR coalesce((m.output ->> 'flatten')::boolean, false) THEN
    RAISE EXCEPTION 'superduper.%: model "%" outputs %, not scores', p_function, p_model, superduper._output_sql_type(m.name, m.output)
      USING HINT = 'Name a reranker: cohereRerank(...), a transformers model with task "rerank", or a function model taking '
                   || '{"query": ..., "documents": [...]} and returning one number per document, with output {"type": "jsonb"}.';
  END IF;
END
$$;

-- The reranker's score of each passage for the query, in the passages' order.
--   SELECT p, s FROM unnest(ARRAY['a', 'b'], superduper.rerank_scores('reranker', 'query', ARRAY['a', 'b'])) AS x(p, s)
--   ORDER BY s DESC;
CREATE OR REPLACE FUNCTION superduper.rerank_scores(p_reranker text, p_query text, p_passages text[])
RETURNS double precision[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_result jsonb;
  v_count integer := coalesce(cardinality(p_passages), 0);
BEGIN
  PERFORM superduper._reranker('rerank', p_reranker);
  IF p_query IS NULL OR btrim(p_query) = '' THEN
    RAISE EXCEPTION 'superduper.rerank: reranker "%": the query is %', p_reranker, CASE WHEN p_query IS NULL THEN 'NULL' ELSE 'empty' END;
  END IF;
  IF v_count = 0 THEN
    RETURN '{}';
  END IF;
  v_result := superduper._request(p_reranker, 'predict', jsonb_build_object(
    'query', p_query, 'documents', (SELECT jsonb_agg(coalesce(p, '') ORDER BY o) FROM unnest(p_passages) WITH ORDINALITY AS x(p, o))));
  IF jsonb_typeof(v_result) IS DISTINCT FROM 'array' OR jsonb_array_length(v_result) <> v_count
     OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_result) AS e WHERE jsonb_typeof(e) <> 'number') THEN
    RAISE EXCEPTION 'superduper.rerank: reranker "%" answered %, not % scores', p_reranker, left(coalesce(v_result::text, 'NULL'), 200), v_count
      USING HINT = 'A reranker returns an array of numbers, one per document, in the documents'' order.';
  END IF;
  RETURN ARRAY(SELECT e::double precision FROM jsonb_array_elements_text(v_result) WITH ORDINALITY AS x(e, o) ORDER BY o);
END
$$;

-- The k passages of an index that a reranker finds best for a query, among
-- the top p_candidates (default 4 × k, at least 20, at most 1000) of its search: hybrid()
-- when the index has full-text search, like() otherwise, or as p_search says.
-- score is the reranker's; search_rank the hit's rank in the search (1 = best).
--   SELECT r.key, r.score, r.search_rank
--   FROM superduper.rerank('chunk_index', 'how long are backups kept', 'reranker', 5) AS r;
CREATE OR REPLACE FUNCTION superduper.rerank(p_index text, p_query text, p_reranker text, p_k integer DEFAULT 10, p_filter jsonb DEFAULT NULL,
                                             p_candidates integer DEFAULT NULL, p_search text DEFAULT NULL)
RETURNS TABLE (id text, key text[], score double precision, search_rank integer)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
  s record := superduper._passage_source(p_index, p_k);
  v_n integer := coalesce(p_candidates, least(greatest(p_k * 4, 20), 1000));
  v_search text := coalesce(p_search, CASE WHEN s.full_text THEN 'hybrid' ELSE 'like' END);
  v_hits jsonb;
  v_passages jsonb;
  v_scores double precision[];
BEGIN
  IF v_n < p_k OR v_n > 1000 THEN
    RAISE EXCEPTION 'superduper.rerank: index "%": candidates must be from k (%) to 1000, not %', p_index, p_k, v_n;
  END IF;
  IF v_search NOT IN ('like', 'hybrid') THEN
    RAISE EXCEPTION 'superduper.rerank: index "%": search must be ''like'' or ''hybrid'', not %', p_index, quote_literal(v_search);
  END IF;
  PERFORM superduper._reranker('rerank', p_reranker);
  v_hits := superduper._search_hits(p_index, p_query, v_n, p_filter, v_search = 'hybrid');
  v_passages := superduper._passages(p_index, v_hits);
  v_scores := superduper.rerank_scores(p_reranker, p_query,
                                       ARRAY(SELECT e ->> 'text' FROM pg_catalog.jsonb_array_elements(v_passages) WITH ORDINALITY AS x(e, o) ORDER BY o));
  RETURN QUERY
  SELECT e ->> 'id', ARRAY(SELECT pg_catalog.jsonb_array_elements_text(e -> 'key')), v_scores[o], o::integer
  FROM pg_catalog.jsonb_array_elements(v_passages) WITH ORDINALITY AS x(e, o)
  ORDER BY v_scores[o] DESC, o
  LIMIT p_k;
END
$$;
