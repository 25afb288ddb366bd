-- superduper.like(): the k rows nearest to a query, through the vector index's
-- search functions (rendered per index from ../templates/search.sql, see
-- 070_vector_indexes.sql). Here: like() in both forms, the checks of its
-- arguments, the query's embedding (cached, or asked of a sidecar through
-- superduper._embed, 085_model_calls.sql), and the JSON filter turned into SQL.

-- Functions whose signature names the vector type (like() in both forms and the
-- dispatch to the index's search function) come from ../templates/like.sql, with
-- the type spelled in whatever schema pgvector lives in, and the dispatch, one
-- branch per current vector index, rendered here and whenever the set of
-- current indexes changes (the trigger below: an apply, a removal, a rebuilt
-- version swapped in). An index with no branch is searched through the dynamic
-- fallback: correct, only slower.
--
-- A branch by id is never wrong: ids are not reused, and the id comes from the
-- registry as of the call. A branch by name is right only if the render saw
-- every committed change, so names are rendered only under READ COMMITTED,
-- where each statement below sees what the transactions before this one's
-- apply lock committed (and every path that changes the indexes takes that lock
-- first). Under REPEATABLE READ or SERIALIZABLE the snapshot may be older than a
-- swap committed meanwhile: the vector form then looks each index up instead.
CREATE OR REPLACE FUNCTION superduper._like_render()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_fallback text := 'RETURN QUERY SELECT * FROM superduper._like_search(v_index, v_query, p_k, p_filter);';
  v_by_id text;
  v_by_name text;
  v_lookup text := 'v_index := (superduper._like_index(p_index, p_k)).id;';
BEGIN
  -- One render at a time (two would fail on the functions' catalog rows).
  PERFORM pg_advisory_xact_lock(@{locks.namespace}, @{locks.apply});
  SELECT string_agg(format('v_index = %s THEN' || chr(10) || '%s', v.id, superduper._like_branch(v.id)),
                    chr(10) || '  ELSIF ' ORDER BY v.id),
         string_agg(format('p_index = %L THEN' || chr(10) || '%s', v.name, superduper._like_branch(v.id)),
                    chr(10) || '  ELSIF ' ORDER BY v.name)
  INTO v_by_id, v_by_name
  FROM superduper._vector_indexes v WHERE v.state = 'current';
  v_by_id := CASE WHEN v_by_id IS NULL THEN v_fallback
              ELSE 'IF ' || v_by_id || chr(10) || '  ELSE' || chr(10) || '    ' || v_fallback || chr(10) || '  END IF;' END;
  IF v_by_name IS NULL OR current_setting('transaction_isolation') <> 'read committed' THEN
    v_by_name := v_lookup || chr(10) || '  ' || v_by_id;
  ELSE
    v_by_name := 'IF ' || v_by_name || chr(10) || '  ELSE' || chr(10) || '    ' || v_lookup || chr(10) || '    ' || v_fallback || chr(10) || '  END IF;';
  END IF;
  PERFORM superduper._template_run('like', jsonb_build_object(
    'vector_type', superduper._vector_type(),
    'dispatch_id', v_by_id,
    'dispatch_name', v_by_name));
END
$$;

-- One index's branch of the dispatch: its search function, filtered or not.
CREATE OR REPLACE FUNCTION superduper._like_branch(p_index integer)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT format('    IF p_filter IS NULL THEN RETURN QUERY SELECT * FROM superduper.%I(v_query, p_k);' || chr(10)
                || '    ELSE RETURN QUERY SELECT * FROM superduper.%I(v_query, p_k, p_filter);' || chr(10)
                || '    END IF;',
                '_vi' || p_index || '_search', '_vi' || p_index || '_search_filtered')
$$;

CREATE OR REPLACE FUNCTION superduper._like_render_trigger()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM superduper._like_render();
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER _like_render AFTER INSERT OR DELETE OR UPDATE OF state ON superduper._vector_indexes
FOR EACH STATEMENT EXECUTE FUNCTION superduper._like_render_trigger();

SELECT superduper._like_render();

-- Checks the arguments common to both forms of superduper.like. It reads only
-- the registry, so it runs with its owner's rights: callers need none on it.
CREATE OR REPLACE FUNCTION superduper._like_index(p_index text, p_k integer)
RETURNS superduper._vector_indexes
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v superduper._vector_indexes;
BEGIN
  SELECT * INTO v FROM superduper._vector_indexes WHERE name = p_index AND state = 'current';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper.like: unknown vector index %', coalesce(quote_literal(p_index), 'NULL')
      USING HINT = 'Vector indexes: ' || coalesce((SELECT string_agg(quote_literal(name), ', ' ORDER BY name) FROM superduper._vector_indexes WHERE state = 'current'), '(none)');
  END IF;
  IF p_k IS NULL OR p_k < 1 OR p_k > 1000 THEN
    RAISE EXCEPTION 'superduper.like: index "%": k must be between 1 and 1000, not %', p_index, coalesce(p_k::text, 'NULL');
  END IF;
  RETURN v;
END
$$;

-- For superduper.like with a text query: the index and the query's embedding,
-- the arguments checked and the embedding cache read in one call (a cache hit is
-- the common case of a search); on a miss, _embed asks a sidecar.
CREATE OR REPLACE FUNCTION superduper._like_query(p_index text, p_k integer, p_query text, OUT index_id integer, OUT embedding real[])
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_model text;
BEGIN
  SELECT v.id, v.query_model, c.embedding INTO index_id, v_model, embedding
  FROM superduper._vector_indexes v
  LEFT JOIN superduper._models m ON m.name = v.query_model
  LEFT JOIN superduper._embed_cache c ON c.model = v.query_model AND c.model_hash = m.spec_hash AND c.input_md5 = md5(p_query)
  WHERE v.name = p_index AND v.state = 'current';
  IF index_id IS NULL OR p_k IS NULL OR p_k < 1 OR p_k > 1000 THEN
    PERFORM superduper._like_index(p_index, p_k); -- raises the error that says which
  END IF;
  IF p_query IS NULL OR btrim(p_query) = '' THEN
    RAISE EXCEPTION 'superduper.like: index "%": the query is %', p_index, CASE WHEN p_query IS NULL THEN 'NULL' ELSE 'empty' END;
  END IF;
  IF embedding IS NULL THEN
    embedding := superduper._embed(v_model, p_query);
  END IF;
END
$$;

-- Was the vector form's dimension lookup (the search functions check it now).
DROP FUNCTION IF EXISTS superduper._model_dim(text);

-- A filter given to superduper.like as JSON, turned into SQL over the source
-- table (alias src): values are quoted as literals, columns checked to exist.
--   {"status": "published"}                column = value
--   {"lang": ["en", "fr"]}                 column IN (...)
--   {"year": {">=": 2020, "<": 2025}}      comparisons: = != < <= > >= in not_in like ilike is_null
CREATE OR REPLACE FUNCTION superduper._filter_sql(p_index text, p_source regclass, p_filter jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_parts text[] := '{}';
  v_column text;
  v_value jsonb;
  v_op text;
  v_operand jsonb;
  v_sql_op text;
BEGIN
  IF jsonb_typeof(p_filter) <> 'object' THEN
    RAISE EXCEPTION 'superduper.like: index "%": the filter must be a JSON object of column conditions, like {"status": "published"}', p_index;
  END IF;
  FOR v_column, v_value IN SELECT key, value FROM jsonb_each(p_filter) LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = p_source AND attname = v_column AND attnum > 0 AND NOT attisdropped) THEN
      RAISE EXCEPTION 'superduper.like: index "%": the filter names column %, which table % does not have', p_index, quote_ident(v_column), p_source
        USING HINT = 'Columns: ' || (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                                      WHERE attrelid = p_source AND attnum > 0 AND NOT attisdropped);
    END IF;
    IF jsonb_typeof(v_value) = 'object' THEN
      FOR v_op, v_operand IN SELECT key, value FROM jsonb_each(v_value) LOOP
        v_parts := v_parts || superduper._filter_condition(p_index, v_column, v_op, v_operand);
      END LOOP;
    ELSIF jsonb_typeof(v_value) = 'array' THEN
      v_parts := v_parts || superduper._filter_condition(p_index, v_column, 'in', v_value);
    ELSE
      v_parts := v_parts || superduper._filter_condition(p_index, v_column, '=', v_value);
    END IF;
  END LOOP;
  RETURN CASE WHEN cardinality(v_parts) = 0 THEN 'true' ELSE array_to_string(v_parts, ' AND ') END;
END
$$;

CREATE OR REPLACE FUNCTION superduper._filter_condition(p_index text, p_column text, p_op text, p_value jsonb)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_literal text := CASE WHEN jsonb_typeof(p_value) IN ('null', 'array', 'object') THEN NULL ELSE quote_literal(p_value #>> '{}') END;
BEGIN
  IF p_op IN ('=', '!=', '<>', '<', '<=', '>', '>=', 'like', 'ilike') AND jsonb_typeof(p_value) IN ('array', 'object') THEN
    RAISE EXCEPTION 'superduper.like: index "%": filter on %: operator % takes a single value', p_index, quote_ident(p_column), p_op;
  END IF;
  CASE p_op
    WHEN '=' THEN RETURN CASE WHEN v_literal IS NULL THEN format('src.%I IS NULL', p_column) ELSE format('src.%I = %s', p_column, v_literal) END;
    WHEN '!=', '<>' THEN RETURN CASE WHEN v_literal IS NULL THEN format('src.%I IS NOT NULL', p_column) ELSE format('src.%I <> %s', p_column, v_literal) END;
    WHEN '<', '<=', '>', '>=' THEN RETURN format('src.%I %s %s', p_column, p_op, v_literal);
    WHEN 'like' THEN RETURN format('src.%I::text LIKE %s', p_column, v_literal);
    WHEN 'ilike' THEN RETURN format('src.%I::text ILIKE %s', p_column, v_literal);
    WHEN 'is_null' THEN RETURN format('src.%I IS %s NULL', p_column, CASE WHEN (p_value #>> '{}')::boolean THEN '' ELSE 'NOT' END);
    WHEN 'in', 'not_in' THEN
      IF jsonb_typeof(p_value) <> 'array' OR jsonb_array_length(p_value) = 0 THEN
        RAISE EXCEPTION 'superduper.like: index "%": filter on %: "%" takes a non-empty array', p_index, quote_ident(p_column), p_op;
      END IF;
      RETURN format('src.%I %s (%s)', p_column, CASE WHEN p_op = 'in' THEN 'IN' ELSE 'NOT IN' END,
                    (SELECT string_agg(quote_literal(e), ', ') FROM jsonb_array_elements_text(p_value) AS e));
    ELSE
      RAISE EXCEPTION 'superduper.like: index "%": filter on %: unknown operator %', p_index, quote_ident(p_column), quote_literal(p_op)
        USING HINT = 'Operators: = != < <= > >= in not_in like ilike is_null.';
  END CASE;
END
$$;
