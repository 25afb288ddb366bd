-- Vector indexes: an approximate (HNSW) index over a listener's vector outputs,
-- with the model that embeds queries, searched by superduper.like().
-- (like() itself and its filters: 075_like.sql.)

-- Distance operator, index operator class, and score (higher is better) per measure.
CREATE OR REPLACE FUNCTION superduper._measure(p_measure text, OUT operator text, OUT opclass text, OUT score text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_schema text := regexp_replace(superduper._vector_type(), '\.vector$', '');
BEGIN
  CASE p_measure
    WHEN 'cosine' THEN operator := '<=>'; opclass := 'vector_cosine_ops'; score := '1 - (%s)';
    WHEN 'l2' THEN operator := '<->'; opclass := 'vector_l2_ops'; score := '-(%s)';
    WHEN 'ip' THEN operator := '<#>'; opclass := 'vector_ip_ops'; score := '-(%s)';
    ELSE RAISE EXCEPTION 'superduper: unknown measure %', quote_literal(p_measure)
      USING HINT = 'Use cosine, l2 or ip.';
  END CASE;
  operator := format('OPERATOR(%s.%s)', v_schema, operator);
  opclass := v_schema || '.' || opclass;
END
$$;

-- Creates the HNSW index of every vector index on a listener version's outputs
-- table (called when a version is created, and when a vector index is applied).
CREATE OR REPLACE FUNCTION superduper._vector_indexes_attach(p_listener_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  l superduper._listeners;
  v superduper._vector_indexes;
BEGIN
  SELECT * INTO l FROM superduper._listeners WHERE id = p_listener_id;
  -- A version being built (071_vector_index_builds.sql) gets its HNSW index
  -- here only on a new listener version's outputs, still empty; over existing
  -- outputs a sidecar builds it concurrently.
  FOR v IN SELECT * FROM superduper._vector_indexes WHERE listener = l.name LOOP
    -- Under superduper.plan (rolled back), over no rows: the same checks (the
    -- operator class takes the column's type) without building the graph.
    EXECUTE superduper._vector_index_hnsw_sql(v, l, false)
            || CASE WHEN superduper._planning() THEN ' WHERE false' ELSE '' END;
    IF v.spec ->> 'full_text' IS NOT NULL THEN
      PERFORM superduper._text_words_attach(v, l);
    END IF;
  END LOOP;
END
$$;

-- The statement that builds a vector index's HNSW graph on a listener
-- version's outputs (CONCURRENTLY: without blocking writes, outside a transaction).
CREATE OR REPLACE FUNCTION superduper._vector_index_hnsw_sql(v superduper._vector_indexes, l superduper._listeners, p_concurrently boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN format('CREATE INDEX %sIF NOT EXISTS %I ON superduper.%I USING hnsw (output %s) WITH (m = %s, ef_construction = %s)',
                CASE WHEN p_concurrently THEN 'CONCURRENTLY ' ELSE '' END,
                superduper._vector_index_name(v.id, l.id), l.output_table, (superduper._measure(v.measure)).opclass,
                (v.options ->> 'm')::integer, (v.options ->> 'ef_construction')::integer);
END
$$;

CREATE OR REPLACE FUNCTION superduper._vector_index_name(p_index integer, p_listener_id integer)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT format('_vi%s_hnsw_l%s', p_index, p_listener_id)
$$;

-- Renders the per-index search function (sql/templates/search.sql) for the
-- listener's current version.
CREATE OR REPLACE FUNCTION superduper._vector_index_code_create(p_index integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v superduper._vector_indexes;
  l superduper._listeners;
  m record;
  v_vars jsonb;
BEGIN
  SELECT * INTO v FROM superduper._vector_indexes WHERE id = p_index;
  SELECT * INTO l FROM superduper._listeners WHERE name = v.listener AND state = 'current';
  m := superduper._measure(v.measure);
  EXECUTE format('DROP FUNCTION IF EXISTS superduper.%I', '_vi' || v.id || '_search');
  EXECUTE format('DROP FUNCTION IF EXISTS superduper.%I', '_vi' || v.id || '_search_filtered');
  v_vars := superduper._listener_vars(l.id);
  v_vars := v_vars || jsonb_build_object(
    'fn_search', format('superduper.%I', '_vi' || v.id || '_search'),
    'fn_search_filtered', format('superduper.%I', '_vi' || v.id || '_search_filtered'),
    'index_name', quote_literal(v.name),
    'vector_type', superduper._vector_type(),
    'vector_dims', regexp_replace(superduper._vector_type(), '\.vector$', '') || '.vector_dims',
    'dim', (SELECT (model.output ->> 'dim')::integer FROM superduper._models AS model WHERE model.name = l.model)::text,
    'distance_o', format('(o.output %s p_query)', m.operator),
    'score_o', format(m.score, format('o.output %s p_query', m.operator)),
    'ef_search', ((v.options ->> 'ef_search')::integer)::text,
    -- The vectors of a listener whose outputs are lists are keyed by their row's
    -- key and their position in its list.
    'id_o', CASE WHEN cardinality(l.pk) = 1 AND NOT l.flatten THEN format('o.%I::text', l.pk[1]) ELSE 'NULL::text' END,
    'key_o', 'ARRAY[' || (SELECT string_agg(format('o.%I::text', p), ', ' ORDER BY o) FROM unnest(l.pk) WITH ORDINALITY AS x(p, o))
             || CASE WHEN l.flatten THEN ', o._position::text' ELSE '' END || ']',
    'pk_eq_src_o', (SELECT string_agg(format('src.%1$I = o.%1$I', p), ' AND ') FROM unnest(l.pk) AS p),
    'source_regclass', quote_literal(superduper._qualify(l.source_schema, l.source_table)) || '::regclass');
  -- The filtered search is dynamic SQL (the filter is built at query time from
  -- JSON, values quoted as literals); its fixed parts are rendered here, with %
  -- doubled so that identifiers containing % survive the later format(): %1$s is
  -- the filter, %2$s what to order by, $1 the query vector, $2 k.
  v_vars := v_vars || jsonb_build_object(
    'filtered_sql', quote_literal(format(
      'SELECT %s AS id, %s AS key, %s AS score FROM %s AS o JOIN %s AS src ON %s WHERE %%1$s ORDER BY %%2$s LIMIT $2',
      replace(v_vars ->> 'id_o', '%', '%%'), replace(v_vars ->> 'key_o', '%', '%%'),
      format(m.score, format('o.output %s $1', m.operator)),
      replace(v_vars ->> 'outputs', '%', '%%'), replace(v_vars ->> 'source', '%', '%%'),
      replace(v_vars ->> 'pk_eq_src_o', '%', '%%'))),
    'distance_param', quote_literal(format('(o.output %s $1)', m.operator)));
  v_vars := v_vars || jsonb_build_object('q', superduper._dollar_tag(ARRAY(SELECT value FROM jsonb_each_text(v_vars))));
  EXECUTE superduper._render('search', v_vars);

  -- The passages of its hits (rerank() and rag()): the listener's key column
  -- in its source, the row found by the hit's key.
  EXECUTE format('DROP FUNCTION IF EXISTS superduper.%I', '_vi' || v.id || '_passages');
  v_vars := v_vars || jsonb_build_object(
    'fn_passages', format('superduper.%I', '_vi' || v.id || '_passages'),
    'text_src', format('src.%I', l.keys[1]),
    'pk_eq_src_hit', (SELECT string_agg(format('src.%I = (h.hit -> ''key'' ->> %s)::%s', p, o - 1, t), ' AND ')
                      FROM unnest(l.pk, l.pk_types) WITH ORDINALITY AS x(p, t, o)));
  EXECUTE superduper._render('passages', v_vars);

  -- The full-text half of hybrid(), over the words stored beside the vectors
  -- (superduper._text_words_attach): the text each vector was computed from.
  EXECUTE format('DROP FUNCTION IF EXISTS superduper.%I', '_vi' || v.id || '_text');
  EXECUTE format('DROP FUNCTION IF EXISTS superduper.%I', '_vi' || v.id || '_text_filtered');
  EXECUTE format('DROP FUNCTION IF EXISTS superduper.%I', '_vi' || v.id || '_hybrid');
  IF v.spec ->> 'full_text' IS NOT NULL THEN
    v_vars := v_vars || jsonb_build_object(
      'fn_hybrid', format('superduper.%I', '_vi' || v.id || '_hybrid'),
      'fn_text', format('superduper.%I', '_vi' || v.id || '_text'),
      'fn_text_filtered', format('superduper.%I', '_vi' || v.id || '_text_filtered'),
      'index_id', v.id::text,
      'outputs_regclass', quote_literal(v_vars ->> 'outputs') || '::regclass',
      'config', quote_literal(v.spec ->> 'full_text') || '::regconfig',
      'words_o', format('o.%I', superduper._text_words_column(v.id)),
      'pk_order_o', (SELECT string_agg(format('o.%I', p), ', ' ORDER BY o) FROM unnest(l.pk) WITH ORDINALITY AS x(p, o)));
    -- As for the filtered vector search: %1$s is the filter; $1 the query that
    -- picks the candidates, $2 n, $3 the query that ranks them.
    v_vars := v_vars || jsonb_build_object('text_filtered_sql', quote_literal(format(
      'SELECT %s AS id, %s AS key, pg_catalog.ts_rank(%s, $3)::double precision AS score '
      'FROM %s AS o JOIN %s AS src ON %s '
      'WHERE %%1$s AND %s OPERATOR(pg_catalog.@@) $1 ORDER BY 3 DESC, %s LIMIT $2',
      replace(v_vars ->> 'id_o', '%', '%%'), replace(v_vars ->> 'key_o', '%', '%%'), replace(v_vars ->> 'words_o', '%', '%%'),
      replace(v_vars ->> 'outputs', '%', '%%'), replace(v_vars ->> 'source', '%', '%%'), replace(v_vars ->> 'pk_eq_src_o', '%', '%%'),
      replace(v_vars ->> 'words_o', '%', '%%'),
      replace(v_vars ->> 'pk_order_o', '%', '%%'))));
    EXECUTE superduper._render('text_search', v_vars);
    EXECUTE superduper._render('hybrid_search', v_vars);
  END IF;
END
$$;

-- The GIN index of a vector index's full-text search, in its source's schema.
CREATE OR REPLACE FUNCTION superduper._text_index_name(p_index integer)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT format('superduper_vi%s_fts', p_index)
$$;

-- Drops a vector index's full-text GIN index, wherever its source is.
CREATE OR REPLACE FUNCTION superduper._text_index_drop(p_index integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_index regclass;
BEGIN
  FOR v_index IN
    SELECT c.oid::regclass FROM pg_class c WHERE c.relkind = 'i' AND c.relname = superduper._text_index_name(p_index)
  LOOP
    EXECUTE format('DROP INDEX %s', v_index);
  END LOOP;
END
$$;

-- The column of an outputs table holding a vector index's words.
CREATE OR REPLACE FUNCTION superduper._text_words_column(p_index integer)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT format('_words_vi%s', p_index)
$$;

-- Gives a listener version's outputs table the words of a vector index's
-- full-text search: the column, the trigger that sets it as vectors are
-- written (../templates/text_words.sql), its value for the rows already there,
-- and its GIN index. Idempotent.
CREATE OR REPLACE FUNCTION superduper._text_words_attach(v superduper._vector_indexes, l superduper._listeners)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_column text := superduper._text_words_column(v.id);
  v_outputs text := superduper._qualify('superduper', l.output_table);
  v_source text := superduper._qualify(l.source_schema, l.source_table);
  v_function text := format('superduper.%I', format('_vi%s_words_l%s', v.id, l.id));
  v_vars jsonb;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = v_outputs::regclass AND attname = v_column AND NOT attisdropped) THEN
    RETURN;
  END IF;
  EXECUTE format('ALTER TABLE %s ADD COLUMN %I pg_catalog.tsvector', v_outputs, v_column);
  v_vars := jsonb_build_object(
    'fn_words', v_function,
    'words_column', quote_ident(v_column),
    'config', quote_literal(v.spec ->> 'full_text'),
    'text_column', quote_ident(l.keys[1]),
    'source', v_source,
    'pk_eq_src_new', (SELECT string_agg(format('src.%1$I = NEW.%1$I', p), ' AND ') FROM unnest(l.pk) AS p));
  v_vars := v_vars || jsonb_build_object('q', superduper._dollar_tag(ARRAY(SELECT value FROM jsonb_each_text(v_vars))));
  EXECUTE superduper._render('text_words', v_vars);
  EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF output ON %s FOR EACH ROW EXECUTE FUNCTION %s()',
                 format('_vi%s_words', v.id), v_outputs, v_function);
  -- Under superduper.plan (rolled back), neither the words of every row nor
  -- their index are built: the checks above are what a plan needs.
  IF superduper._planning() THEN
    RETURN;
  END IF;
  EXECUTE format('UPDATE %s AS o SET %I = pg_catalog.to_tsvector(%L::regconfig, src.%I) FROM %s AS src WHERE %s',
                 v_outputs, v_column, v.spec ->> 'full_text', l.keys[1], v_source,
                 (SELECT string_agg(format('src.%1$I = o.%1$I', p), ' AND ') FROM unnest(l.pk) AS p));
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (%I)', format('_vi%s_fts_l%s', v.id, l.id), v_outputs, v_column);
END
$$;

-- Stops keeping a vector index's words (their triggers go with their
-- functions) and forgets their counts; the columns stay, for
-- superduper._vector_index_leftovers to drop.
CREATE OR REPLACE FUNCTION superduper._text_words_stop(p_index integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_function regprocedure;
BEGIN
  FOR v_function IN
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = 'superduper'::regnamespace AND p.proname LIKE '\_vi' || p_index || '\_words\_l%'
  LOOP
    EXECUTE format('DROP FUNCTION %s CASCADE', v_function);
  END LOOP;
  DELETE FROM superduper._text_word_stats WHERE index_id = p_index;
END
$$;

-- Takes a vector index's words away from every outputs table that has them
-- (the column goes with its GIN index; the trigger goes with its function),
-- and their counts (072_text_common_words.sql).
CREATE OR REPLACE FUNCTION superduper._text_words_drop(p_index integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_table regclass;
BEGIN
  PERFORM superduper._text_words_stop(p_index);
  FOR v_table IN
    SELECT a.attrelid::regclass FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = 'superduper'::regnamespace AND c.relkind IN ('r', 'p') AND a.attname = superduper._text_words_column(p_index) AND NOT a.attisdropped
  LOOP
    EXECUTE format('ALTER TABLE %s DROP COLUMN %I', v_table, superduper._text_words_column(p_index));
  END LOOP;
END
$$;

-- Component type "vector_index" (see superduper._component_types).
SELECT superduper._component_type('vector_index', 'vector index', '_vector_indexes', 20, @{spec_versions.vector_index});
-- Read at query time: changing them keeps the HNSW graph.
SELECT superduper._component_non_breaking('vector_index', ARRAY[@{identity.vector_index}]);

-- p_search_path is unused: the index names its listener, not a table.
CREATE OR REPLACE FUNCTION superduper._apply_vector_index(p_spec jsonb, p_search_path text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text := p_spec ->> 'name';
  v_listener superduper._listeners;
  v_listener_model superduper._models;
  v_query_model superduper._models;
  v_measure text := coalesce(p_spec ->> 'measure', 'cosine');
  v_options jsonb := '{"m": 16, "ef_construction": 64, "ef_search": 100}';
  v_spec jsonb;
  v_old superduper._vector_indexes;
  v_building superduper._vector_indexes;
  v_id integer;
  v_version integer;
  v_key text;
  v_value jsonb;
  v_unknown text;
BEGIN
  IF v_name IS NULL OR v_name = '' OR octet_length(v_name) > 48 THEN
    RAISE EXCEPTION 'superduper: a vector index needs a "name" of 1 to 48 bytes';
  END IF;
  SELECT k INTO v_unknown FROM jsonb_object_keys(p_spec) AS k
  WHERE k NOT IN ('type', 'name', 'listener', 'query_model', 'compatible_listener', 'measure', 'index', 'full_text') LIMIT 1;
  IF v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'superduper: vector index "%": unknown field "%"', v_name, v_unknown
      USING HINT = 'Fields: name, listener, query_model or compatible_listener, measure, index, full_text.';
  END IF;
  SELECT * INTO v_listener FROM superduper._listeners WHERE name = p_spec ->> 'listener' AND state = 'current';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper: vector index "%": unknown listener %', v_name, coalesce(quote_literal(p_spec ->> 'listener'), '(missing "listener")')
      USING HINT = 'The listener whose outputs are the vectors to search; apply it first.';
  END IF;
  SELECT * INTO v_listener_model FROM superduper._models WHERE name = v_listener.model;
  IF v_listener_model.output ->> 'type' <> 'vector' THEN
    RAISE EXCEPTION 'superduper: vector index "%": listener "%" outputs %, not vectors', v_name, v_listener.name, v_listener.output_type;
  END IF;

  -- Queries are embedded by the listener's own model unless a compatible one is
  -- named (text queries over image vectors, say).
  IF p_spec ? 'query_model' AND p_spec ? 'compatible_listener' THEN
    RAISE EXCEPTION 'superduper: vector index "%": give query_model or compatible_listener, not both', v_name;
  END IF;
  IF p_spec ? 'compatible_listener' THEN
    SELECT m.* INTO v_query_model FROM superduper._listeners l JOIN superduper._models m ON m.name = l.model
    WHERE l.name = p_spec ->> 'compatible_listener' AND l.state = 'current';
    IF NOT FOUND THEN
      RAISE EXCEPTION 'superduper: vector index "%": unknown compatible listener %', v_name, quote_literal(p_spec ->> 'compatible_listener');
    END IF;
  ELSE
    SELECT * INTO v_query_model FROM superduper._models WHERE name = coalesce(p_spec ->> 'query_model', v_listener.model);
    IF NOT FOUND THEN
      RAISE EXCEPTION 'superduper: vector index "%": unknown query model %', v_name, quote_literal(p_spec ->> 'query_model');
    END IF;
  END IF;
  IF v_query_model.output ->> 'type' <> 'vector' OR (v_query_model.output ->> 'dim') <> (v_listener_model.output ->> 'dim') THEN
    RAISE EXCEPTION 'superduper: vector index "%": query model "%" outputs %, but the vectors of listener "%" are %',
      v_name, v_query_model.name, superduper._output_sql_type(v_query_model.name, v_query_model.output),
      v_listener.name, v_listener.output_type
      USING HINT = 'Queries and indexed vectors must have the same dimension (and come from compatible models).';
  END IF;
  PERFORM superduper._measure(v_measure);

  -- Full-text search (for superduper.hybrid) over the listener's text, in a text
  -- search configuration ("english", "simple", ...).
  IF p_spec ? 'full_text' AND jsonb_typeof(p_spec -> 'full_text') <> 'null' THEN
    IF jsonb_typeof(p_spec -> 'full_text') <> 'string' OR to_regclass('pg_catalog.pg_ts_config') IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE oid::regconfig::text = p_spec ->> 'full_text' OR cfgname = p_spec ->> 'full_text') THEN
      RAISE EXCEPTION 'superduper: vector index "%": "full_text" must name a text search configuration, not %', v_name, p_spec -> 'full_text'
        USING HINT = 'For example "english" or "simple"; configurations: ' || (SELECT string_agg(cfgname, ', ' ORDER BY cfgname) FROM pg_ts_config);
    END IF;
    IF v_listener.flatten THEN
      RAISE EXCEPTION 'superduper: vector index "%": listener "%" has a list of vectors per row; full-text search needs one text per vector', v_name, v_listener.name
        USING HINT = 'Chunk first (a listener whose outputs are the chunks), then embed the chunks with a listener on its outputs table, and index that.';
    END IF;
    IF v_listener.key_types[1] NOT IN ('text', 'character varying') AND v_listener.key_types[1] NOT LIKE 'character varying(%' THEN
      RAISE EXCEPTION 'superduper: vector index "%": full-text search reads the text of listener "%"''s key column %, which is %, not text', v_name,
        v_listener.name, quote_ident(v_listener.keys[1]), v_listener.key_types[1];
    END IF;
  END IF;

  IF p_spec ? 'index' THEN
    IF jsonb_typeof(p_spec -> 'index') <> 'object' THEN
      RAISE EXCEPTION 'superduper: vector index "%": "index" must be an object like {"m": 16, "ef_construction": 64, "ef_search": 100}', v_name;
    END IF;
    FOR v_key, v_value IN SELECT key, value FROM jsonb_each(p_spec -> 'index') LOOP
      IF NOT v_options ? v_key THEN
        RAISE EXCEPTION 'superduper: vector index "%": unknown index option "%"', v_name, v_key
          USING HINT = 'HNSW options: m (2 to 100), ef_construction (4 to 1000), ef_search (1 to 1000).';
      END IF;
      -- (Parenthesized: PL/pgSQL would take the THEN of a bare CASE for the IF's.)
      IF jsonb_typeof(v_value) <> 'number' OR (v_value #>> '{}')::numeric NOT BETWEEN
           (CASE v_key WHEN 'm' THEN 2 WHEN 'ef_construction' THEN 4 ELSE 1 END)
           AND (CASE v_key WHEN 'm' THEN 100 ELSE 1000 END) THEN
        RAISE EXCEPTION 'superduper: vector index "%": index option "%" is out of range: %', v_name, v_key, v_value;
      END IF;
    END LOOP;
    v_options := v_options || (p_spec -> 'index');
  END IF;

  -- query_model stays null in the spec when it is the listener's own model, so
  -- that it follows the listener when that gets another model.
  v_spec := jsonb_build_object('type', 'vector_index', 'name', v_name, 'listener', v_listener.name,
                               'query_model', CASE WHEN p_spec ? 'query_model' OR p_spec ? 'compatible_listener'
                                                   THEN v_query_model.name END,
                               'measure', v_measure, 'index', v_options)
            -- (absent rather than null, so that specs stored before it compare equal)
            || CASE WHEN p_spec ->> 'full_text' IS NOT NULL THEN jsonb_build_object('full_text', p_spec ->> 'full_text') ELSE '{}' END;
  SELECT * INTO v_old FROM superduper._vector_indexes WHERE name = v_name AND state = 'current' FOR UPDATE;
  SELECT * INTO v_building FROM superduper._vector_indexes WHERE name = v_name AND state = 'building' FOR UPDATE;
  IF v_old.id IS NULL THEN
    INSERT INTO superduper._vector_indexes (name, listener, query_model, measure, options, spec)
    VALUES (v_name, v_listener.name, v_query_model.name, v_measure, v_options, v_spec)
    RETURNING id INTO v_id;
    PERFORM superduper._vector_indexes_attach(l.id) FROM superduper._listeners l WHERE l.name = v_listener.name;
    PERFORM superduper._vector_index_code_create(v_id);
    RETURN jsonb_build_object('type', 'vector_index', 'name', v_name, 'action', 'created', 'version', 1);
  END IF;
  IF v_building.id IS NOT NULL AND v_building.spec = v_spec THEN
    RETURN jsonb_build_object('type', 'vector_index', 'name', v_name, 'action', 'unchanged', 'version', v_building.version,
                              'building', true);
  END IF;
  IF superduper._identity('vector_index', v_old.spec) = superduper._identity('vector_index', v_spec) THEN
    -- Back to the current graph: a version being built is no longer wanted.
    IF v_building.id IS NOT NULL THEN
      PERFORM superduper._vector_index_drop(v_building.id);
    END IF;
    IF v_old.spec = v_spec THEN
      RETURN jsonb_build_object('type', 'vector_index', 'name', v_name, 'action', 'unchanged', 'version', v_old.version);
    END IF;
    -- Only what is read at query time changed (ef_search, the query model, the
    -- full-text search): the graph stays, the search functions are rendered again.
    IF v_old.spec ->> 'full_text' IS DISTINCT FROM v_spec ->> 'full_text' THEN
      PERFORM superduper._text_index_drop(v_old.id);
      PERFORM superduper._text_words_drop(v_old.id);
    END IF;
    UPDATE superduper._vector_indexes
    SET options = v_options, spec = v_spec, query_model = v_query_model.name, updated_at = now()
    WHERE id = v_old.id;
    PERFORM superduper._vector_indexes_attach(l.id) FROM superduper._listeners l WHERE l.name = v_listener.name;
    PERFORM superduper._vector_index_code_create(v_old.id);
    RETURN jsonb_build_object('type', 'vector_index', 'name', v_name, 'action', 'updated', 'version', v_old.version);
  END IF;

  -- Another listener, measure or graph shape: a new version, whose HNSW indexes
  -- a sidecar builds concurrently (071_vector_index_builds.sql) while the
  -- current one keeps answering searches; it is swapped in when they are built.
  IF v_building.id IS NOT NULL THEN
    PERFORM superduper._vector_index_drop(v_building.id);
  END IF;
  INSERT INTO superduper._vector_indexes (name, listener, query_model, measure, options, spec, version, state)
  VALUES (v_name, v_listener.name, v_query_model.name, v_measure, v_options, v_spec,
          (SELECT max(version) + 1 FROM superduper._vector_indexes WHERE name = v_name), 'building')
  RETURNING id, version INTO v_id, v_version;
  -- Under superduper.plan, the index's DDL is checked as apply would build it (over no rows).
  IF superduper._planning() THEN
    PERFORM superduper._vector_indexes_attach(l.id) FROM superduper._listeners l WHERE l.name = v_listener.name;
  END IF;
  RETURN jsonb_build_object('type', 'vector_index', 'name', v_name, 'action', 'rebuilding', 'version', v_version);
END
$$;

-- Removes a vector index, every version of it (its search functions and HNSW
-- indexes); the listener stays.
CREATE OR REPLACE FUNCTION superduper._remove_vector_index(p_name text, p_keep_outputs boolean, p_cascade boolean)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM superduper._vector_index_drop(id) FROM superduper._vector_indexes WHERE name = p_name;
  RETURN jsonb_build_array(jsonb_build_object('type', 'vector_index', 'name', p_name, 'action', 'removed'));
END
$$;

-- Drops a vector index version: its HNSW indexes, words, search functions and
-- registry row; a version being built is forgotten instead (071_vector_index_builds.sql).
CREATE OR REPLACE FUNCTION superduper._vector_index_drop(p_index integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_index text;
BEGIN
  -- A version being built may have a CREATE INDEX CONCURRENTLY under way on it.
  IF (SELECT state FROM superduper._vector_indexes WHERE id = p_index) = 'building' THEN
    PERFORM superduper._vector_index_forget(p_index);
    RETURN;
  END IF;
  FOR v_index IN
    SELECT c.relname FROM pg_class c
    WHERE c.relnamespace = 'superduper'::regnamespace AND c.relkind = 'i' AND c.relname LIKE '\_vi' || p_index || '\_hnsw\_l%'
  LOOP
    EXECUTE format('DROP INDEX superduper.%I', v_index);
  END LOOP;
  PERFORM superduper._vector_index_functions_drop(p_index);
  PERFORM superduper._text_index_drop(p_index);
  PERFORM superduper._text_words_drop(p_index);
  DELETE FROM superduper._vector_indexes WHERE id = p_index;
END
$$;

-- Drops the search functions rendered for a vector index version.
CREATE OR REPLACE FUNCTION superduper._vector_index_functions_drop(p_index integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_suffix text;
BEGIN
  FOREACH v_suffix IN ARRAY ARRAY['_search', '_search_filtered', '_text', '_text_filtered', '_passages'] LOOP
    EXECUTE format('DROP FUNCTION IF EXISTS superduper.%I', '_vi' || p_index || v_suffix);
  END LOOP;
END
$$;
