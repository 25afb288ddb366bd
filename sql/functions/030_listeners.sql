-- Listeners: "keep the output of model M on columns K of table T up to date".
--
-- A listener has one row per version in superduper._listeners. Creating a version
-- creates its outputs table, renders its triggers and worker functions from the
-- templates, and plans the backfill of existing rows, all in the caller's
-- transaction: either everything exists afterwards or nothing does.

CREATE OR REPLACE FUNCTION superduper._listener_settings(p_name text, p_settings jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_defaults jsonb := '@{listeners.settings}';
  v_key text;
  v_value jsonb;
BEGIN
  IF p_settings IS NULL THEN
    RETURN v_defaults;
  END IF;
  IF jsonb_typeof(p_settings) <> 'object' THEN
    RAISE EXCEPTION 'superduper: listener "%": "settings" must be a JSON object', p_name;
  END IF;
  FOR v_key, v_value IN SELECT key, value FROM jsonb_each(p_settings) LOOP
    IF NOT v_defaults ? v_key THEN
      RAISE EXCEPTION 'superduper: listener "%": unknown setting "%"', p_name, v_key
        USING HINT = 'Known settings: ' || (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(v_defaults) AS k);
    END IF;
    IF jsonb_typeof(v_value) <> 'number' OR (v_value #>> '{}')::numeric <= 0 THEN
      RAISE EXCEPTION 'superduper: listener "%": setting "%" must be a positive number, not %', p_name, v_key, v_value;
    END IF;
  END LOOP;
  RETURN v_defaults || p_settings;
END
$$;

-- Finds the source table of a listener by its unquoted name, in the given schema
-- or else in the caller's search_path (passed in by superduper.apply, whose own
-- search_path is the caller's), and says clearly what is wrong if it can't.
CREATE OR REPLACE FUNCTION superduper._resolve_source(p_listener text, p_schema text, p_table text,
                                                      p_search_path text[] DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_oid oid;
  v_kind "char";
  v_schemas text[];
BEGIN
  IF p_table IS NULL OR p_table = '' THEN
    RAISE EXCEPTION 'superduper: listener "%": "table" is missing', p_listener;
  END IF;
  IF p_schema IS NOT NULL THEN
    v_schemas := ARRAY[p_schema];
  ELSE
    v_schemas := coalesce(p_search_path, '{}');
  END IF;
  SELECT c.oid, c.relkind INTO v_oid, v_kind
  FROM unnest(v_schemas) WITH ORDINALITY AS s(name, ord)
  JOIN pg_catalog.pg_namespace n ON n.nspname = s.name
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p_table
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  ORDER BY s.ord
  LIMIT 1;
  IF v_oid IS NULL THEN
    RAISE EXCEPTION 'superduper: listener "%": table % does not exist', p_listener,
      CASE WHEN p_schema IS NULL THEN quote_ident(p_table) ELSE superduper._qualify(p_schema, p_table) END
      USING HINT = CASE WHEN p_schema IS NULL
        THEN 'Searched schemas: ' || coalesce(array_to_string(v_schemas, ', '), '(none)') || '. Give "schema" in the spec if the table is elsewhere.'
        ELSE 'Check the spelling; names are case-sensitive and taken as written (no quotes needed).' END;
  END IF;
  IF v_kind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION 'superduper: listener "%": % is a %, not a table', p_listener, v_oid::regclass,
      CASE v_kind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END
      USING HINT = 'Listeners need an ordinary table with a primary key, so that changes can be captured by triggers.';
  END IF;
  RETURN v_oid::regclass;
END
$$;

-- Template values for one listener version: names and expressions, all quoted.
CREATE OR REPLACE FUNCTION superduper._listener_vars(p_id integer)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  l superduper._listeners;
  v_filter text;
  v_vars jsonb;
  v_eq_ops boolean[];
BEGIN
  SELECT * INTO l FROM superduper._listeners WHERE id = p_id;

  v_filter := CASE WHEN l.filter IS NULL THEN 'true' ELSE E'(\n' || l.filter || E'\n)' END;

  -- Key columns are compared with their type's equality where it has one in
  -- pg_catalog, and as text otherwise (json, point, xml, and extension types such
  -- as pgvector's, whose operators the generated functions, pinned to pg_catalog,
  -- cannot name), to decide whether an UPDATE changed them.
  SELECT array_agg(EXISTS (
           SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
           WHERE am.amname = 'btree' AND oc.opcdefault AND oc.opcintype = a.atttypid
             AND oc.opcnamespace = 'pg_catalog'::regnamespace)
         ORDER BY k.ord)
  INTO v_eq_ops
  FROM unnest(l.keys) WITH ORDINALITY AS k(name, ord)
  JOIN pg_attribute a ON a.attrelid = l.source AND a.attname = k.name;

  -- Primary keys travel in three forms: as the queue's key (a JSON array of their
  -- text forms), as text arrays between sidecar and write function (pk1, pk2...),
  -- and in their own types once inside a statement.
  SELECT jsonb_build_object(
    'listener_id', l.id::text,
    'source', superduper._qualify(l.source_schema, l.source_table),
    'outputs', superduper._qualify('superduper', l.output_table),
    'output_type', l.output_type,
    'filter', v_filter,
    'pk_cols', string_agg(quote_ident(p.name), ', ' ORDER BY p.ord),
    'pk_json_n', 'jsonb_build_array(' || string_agg(format('n.%I::text', p.name), ', ' ORDER BY p.ord) || ')',
    'pk_json_o', 'jsonb_build_array(' || string_agg(format('o.%I::text', p.name), ', ' ORDER BY p.ord) || ')',
    'pk_json_src', 'jsonb_build_array(' || string_agg(format('src.%I::text', p.name), ', ' ORDER BY p.ord) || ')',
    'pk_json_i', 'jsonb_build_array(' || string_agg(format('i.pk%s::text', p.ord), ', ' ORDER BY p.ord) || ')',
    'pk_json_u', 'jsonb_build_array(' || string_agg(format('u.pk%s', p.ord), ', ' ORDER BY p.ord) || ')',
    'pk_eq_on', string_agg(format('o.%1$I = n.%1$I', p.name), ' AND ' ORDER BY p.ord),
    'pk_eq_to', string_agg(format('t.%1$I = o.%1$I', p.name), ' AND ' ORDER BY p.ord),
    'pk_eq_src_c', string_agg(format('src.%I = (c.pk ->> %s)::%s', p.name, p.ord - 1, p.type), ' AND ' ORDER BY p.ord),
    'pk_eq_t_c', string_agg(format('t.%I = (c.pk ->> %s)::%s', p.name, p.ord - 1, p.type), ' AND ' ORDER BY p.ord),
    'pk_eq_src_i', string_agg(format('src.%I = i.pk%s', p.name, p.ord), ' AND ' ORDER BY p.ord),
    'pk_eq_t_i', string_agg(format('t.%I = i.pk%s', p.name, p.ord), ' AND ' ORDER BY p.ord),
    'pk_cols_i', string_agg(format('i.pk%s', p.ord), ', ' ORDER BY p.ord),
    'pk_decl', string_agg(format(', p%s text', p.ord), '' ORDER BY p.ord),
    'pk_text_c', string_agg(format(', c.pk ->> %s', p.ord - 1), '' ORDER BY p.ord),
    'pk_text_src', string_agg(format(', src.%I::text', p.name), '' ORDER BY p.ord),
    'pk_params', string_agg(format('p_pk%s text[]', p.ord), ', ' ORDER BY p.ord),
    'pk_args', string_agg(format('p_pk%s', p.ord), ', ' ORDER BY p.ord),
    'pk_unnest_cols', string_agg(format('pk%s', p.ord), ', ' ORDER BY p.ord),
    'pk_typed_u', string_agg(format('u.pk%1$s::%2$s AS pk%1$s', p.ord, p.type), ', ' ORDER BY p.ord),
    'pk_values_u', string_agg(format('u.pk%1$s::%2$s', p.ord, p.type), ', ' ORDER BY p.ord),
    'pk_eq_src_u', string_agg(format('src.%I = u.pk%s::%s', p.name, p.ord, p.type), ' AND ' ORDER BY p.ord),
    'pk_eq_t_u', string_agg(format('t.%I = u.pk%s::%s', p.name, p.ord, p.type), ' AND ' ORDER BY p.ord),
    'pk_row_src', 'ROW(' || string_agg(format('src.%I', p.name), ', ' ORDER BY p.ord) || ')',
    'pk_row_lo', 'ROW(' || string_agg(format('(v_lo ->> %s)::%s', p.ord - 1, p.type), ', ' ORDER BY p.ord) || ')',
    'pk_row_hi', 'ROW(' || string_agg(format('(v_hi ->> %s)::%s', p.ord - 1, p.type), ', ' ORDER BY p.ord) || ')',
    'pk_order_src', string_agg(format('src.%I', p.name), ', ' ORDER BY p.ord),
    'pk_order_src_desc', string_agg(format('src.%I DESC', p.name), ', ' ORDER BY p.ord),
    'pk_columns_ddl', string_agg(format('%I %s NOT NULL', p.name, p.type), ', ' ORDER BY p.ord)
  ) INTO v_vars
  FROM unnest(l.pk, l.pk_types) WITH ORDINALITY AS p(name, type, ord);

  -- Row triggers see the row as NEW/OLD. A filter is evaluated on them as a
  -- one-row table named src, so its bare column names resolve.
  v_vars := v_vars || jsonb_build_object(
    'pk_json_new', 'jsonb_build_array(' || (SELECT string_agg(format('NEW.%I::text', p), ', ' ORDER BY o) FROM unnest(l.pk) WITH ORDINALITY AS x(p, o)) || ')',
    'pk_json_old', 'jsonb_build_array(' || (SELECT string_agg(format('OLD.%I::text', p), ', ' ORDER BY o) FROM unnest(l.pk) WITH ORDINALITY AS x(p, o)) || ')',
    'pk_eq_t_old', (SELECT string_agg(format('t.%1$I = OLD.%1$I', p), ' AND ') FROM unnest(l.pk) AS p),
    'pk_changed', '(' || (SELECT string_agg(format('OLD.%1$I IS DISTINCT FROM NEW.%1$I', p), ' OR ') FROM unnest(l.pk) AS p) || ')',
    'insert_when', CASE WHEN l.filter IS NULL THEN ''
                        ELSE E'IF NOT EXISTS (SELECT 1 FROM (SELECT NEW.*) AS src WHERE ' || v_filter || E') THEN\n    RETURN NEW;\n  END IF;' END,
    'filter_new', CASE WHEN l.filter IS NULL THEN 'true'
                       ELSE 'EXISTS (SELECT 1 FROM (SELECT NEW.*) AS src WHERE ' || v_filter || ')' END,
    'filter_old', CASE WHEN l.filter IS NULL THEN 'true'
                       ELSE 'EXISTS (SELECT 1 FROM (SELECT OLD.*) AS src WHERE ' || v_filter || ')' END);

  SELECT v_vars || jsonb_build_object(
    'key_decl', string_agg(format(', k%s %s', k.ord, k.type), '' ORDER BY k.ord),
    'key_select', string_agg(format(', src.%I AS k%s', k.name, k.ord), '' ORDER BY k.ord),
    'key_from_s', string_agg(format(', s.k%s', k.ord), '' ORDER BY k.ord),
    'keys_changed', '(' || string_agg(
      CASE WHEN v_eq_ops[k.ord] THEN format('OLD.%1$I IS DISTINCT FROM NEW.%1$I', k.name)
           ELSE format('OLD.%1$I::text IS DISTINCT FROM NEW.%1$I::text', k.name) END,
      ' OR ' ORDER BY k.ord) || ')'
  ) INTO v_vars
  FROM unnest(l.keys, l.key_types) WITH ORDINALITY AS k(name, type, ord);

  -- The update trigger fires only when a column that matters changed: the
  -- primary key, a key column, or a column the filter reads. Other UPDATEs do
  -- not even call the trigger function.
  SELECT v_vars || jsonb_build_object('update_when', '(' || string_agg(
      CASE WHEN EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
                        WHERE am.amname = 'btree' AND oc.opcdefault AND oc.opcintype = a.atttypid
                          AND oc.opcnamespace = 'pg_catalog'::regnamespace)
           THEN format('OLD.%1$I IS DISTINCT FROM NEW.%1$I', a.attname)
           ELSE format('OLD.%1$I::text IS DISTINCT FROM NEW.%1$I::text', a.attname) END,
      ' OR ' ORDER BY a.attnum) || ')')
  INTO v_vars
  FROM pg_attribute a
  WHERE a.attrelid = l.source
    AND a.attname = ANY (l.pk || l.keys || superduper._filter_columns(l.source, l.filter));

  RETURN v_vars || jsonb_build_object(
    'fn_insert', format('superduper.%I', '_l' || l.id || '_on_insert'),
    'fn_update', format('superduper.%I', '_l' || l.id || '_on_update'),
    'fn_delete', format('superduper.%I', '_l' || l.id || '_on_delete'),
    'fn_truncate', format('superduper.%I', '_l' || l.id || '_on_truncate'),
    'trg_insert', quote_ident(superduper._trigger_name(l.id, 'insert')),
    'trg_update', quote_ident(superduper._trigger_name(l.id, 'update')),
    'trg_delete', quote_ident(superduper._trigger_name(l.id, 'delete')),
    'trg_truncate', quote_ident(superduper._trigger_name(l.id, 'truncate')),
    'fn_claim', format('superduper.%I', '_l' || l.id || '_claim'),
    'fn_claim_chunk', format('superduper.%I', '_l' || l.id || '_claim_chunk'),
    'fn_write', format('superduper.%I', '_l' || l.id || '_write'));
END
$$;

-- Trigger names start with "~" so that they sort after (and so fire after) the
-- table's own triggers, which PostgreSQL fires in name order: the insert trigger
-- runs BEFORE INSERT (measured ~10% cheaper than AFTER) and must see the key
-- the other BEFORE triggers settled on.
CREATE OR REPLACE FUNCTION superduper._trigger_name(p_listener integer, p_event text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT '~superduper_l' || p_listener || '_' || p_event
$$;

-- The columns of p_source that a filter expression reads, found by letting
-- PostgreSQL parse it into a temporary view and reading the view's dependencies.
CREATE OR REPLACE FUNCTION superduper._filter_columns(p_source regclass, p_filter text)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_view text := '_superduper_filter_' || substr(md5(random()::text), 1, 12);
  v_columns text[];
BEGIN
  IF p_filter IS NULL THEN
    RETURN '{}';
  END IF;
  EXECUTE format(E'CREATE TEMPORARY VIEW %I AS SELECT 1 AS x FROM %s AS src WHERE (\n%s\n)', v_view, p_source, p_filter);
  SELECT coalesce(array_agg(DISTINCT a.attname::text), '{}') INTO v_columns
  FROM pg_depend d
  JOIN pg_rewrite r ON r.oid = d.objid
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
  WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class = format('pg_temp.%I', v_view)::regclass
    AND d.refobjid = p_source AND d.refobjsubid > 0;
  EXECUTE format('DROP VIEW pg_temp.%I', v_view);
  RETURN v_columns;
END
$$;

-- Grants SELECT on p_to to every role (and PUBLIC) that has SELECT on p_from.
CREATE OR REPLACE FUNCTION superduper._copy_select_grants(p_from regclass, p_to regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_grantee oid;
BEGIN
  FOR v_grantee IN
    SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) AS a
    WHERE c.oid = p_from AND a.privilege_type = 'SELECT'
  LOOP
    EXECUTE format('GRANT SELECT ON %s TO %s', p_to,
                   CASE WHEN v_grantee = 0 THEN 'PUBLIC' ELSE v_grantee::regrole::text END);
  END LOOP;
END
$$;

-- Renders and runs the per-version triggers and worker functions.
CREATE OR REPLACE FUNCTION superduper._listener_code_create(p_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_vars jsonb := superduper._listener_vars(p_id);
  v_template text;
  v_code_version integer;
BEGIN
  UPDATE superduper._listeners SET code_version = code_version + 1 WHERE id = p_id
  RETURNING code_version INTO v_code_version;
  v_vars := v_vars || jsonb_build_object('code_version', v_code_version::text);
  v_vars := v_vars || jsonb_build_object('q', superduper._dollar_tag(
    ARRAY(SELECT value FROM jsonb_each_text(v_vars))));
  FOREACH v_template IN ARRAY ARRAY['claim', 'claim_chunk', 'write', 'insert', 'update', 'delete', 'truncate'] LOOP
    EXECUTE superduper._render(v_template, v_vars);
  END LOOP;
END
$$;

-- Drops what _listener_code_create made. The source table may be gone already.
CREATE OR REPLACE FUNCTION superduper._listener_code_drop(p_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  l superduper._listeners;
  v_event text;
  v_fn text;
BEGIN
  SELECT * INTO l FROM superduper._listeners WHERE id = p_id;
  FOREACH v_event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = l.source AND tgname = superduper._trigger_name(l.id, v_event)) THEN
      EXECUTE format('DROP TRIGGER %I ON %s', superduper._trigger_name(l.id, v_event),
                     superduper._qualify(l.source_schema, l.source_table));
    END IF;
    EXECUTE format('DROP FUNCTION IF EXISTS superduper.%I()', '_l' || l.id || '_on_' || v_event);
  END LOOP;
  FOR v_fn IN
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'superduper'::regnamespace
      AND p.proname IN ('_l' || l.id || '_claim', '_l' || l.id || '_claim_chunk', '_l' || l.id || '_write')
  LOOP
    EXECUTE 'DROP FUNCTION ' || v_fn;
  END LOOP;
END
$$;

-- Starts the backfill: existing rows that pass the filter are handed out to
-- sidecars in ranges of chunk_size keys, from a cursor at the first key (see
-- the claim_chunk template). Only the first key and the row count are read here,
-- so applying a listener to a large table holds its trigger lock briefly.
CREATE OR REPLACE FUNCTION superduper._listener_backfill_plan(p_id integer)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  l superduper._listeners;
  v_vars jsonb := superduper._listener_vars(p_id);
  v_first jsonb;
  v_total bigint;
BEGIN
  SELECT * INTO l FROM superduper._listeners WHERE id = p_id;
  DELETE FROM superduper._backfill WHERE listener_id = p_id;
  DELETE FROM superduper._backfill_cursor WHERE listener_id = p_id;
  EXECUTE format('SELECT %s FROM %s AS src WHERE %s ORDER BY %s LIMIT 1',
                 v_vars ->> 'pk_json_src', v_vars ->> 'source', v_vars ->> 'filter', v_vars ->> 'pk_order_src')
  INTO v_first;
  EXECUTE format('SELECT count(*) FROM %s AS src WHERE %s', v_vars ->> 'source', v_vars ->> 'filter')
  INTO v_total;
  IF v_first IS NOT NULL THEN
    INSERT INTO superduper._backfill_cursor (listener_id, next, total) VALUES (p_id, v_first, v_total);
  END IF;
  UPDATE superduper._listeners SET backfill_total = v_total, backfill_at = now() WHERE id = p_id;
  IF v_total > 0 THEN
    -- Sidecars start on it as soon as the apply commits.
    PERFORM pg_notify('@{notify.work.channel}', p_id::text);
  END IF;
  RETURN v_total;
END
$$;

-- Creates one version of a listener from a normalized spec: registry row,
-- outputs table, code, backfill plan.
CREATE OR REPLACE FUNCTION superduper._listener_version_create(p_spec jsonb, p_version integer, p_state text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text := p_spec ->> 'name';
  v_keys text[] := ARRAY(SELECT jsonb_array_elements_text(p_spec -> 'keys'));
  v_source regclass;
  v_schema text;
  v_table text;
  v_pk text[];
  v_pk_types text[];
  v_key_types text[];
  v_missing text;
  v_model superduper._models;
  v_output_type text;
  v_output_table text;
  v_id integer;
  v_cursor refcursor;
  v_vars jsonb;
BEGIN
  v_source := superduper._resolve_source(v_name, p_spec ->> 'schema', p_spec ->> 'table');
  SELECT n.nspname, c.relname INTO v_schema, v_table
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_source;

  SELECT array_agg(a.attname::text ORDER BY k.ord), array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord)
  INTO v_pk, v_pk_types
  FROM pg_index i
  CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
  WHERE i.indrelid = v_source AND i.indisprimary;
  IF v_pk IS NULL THEN
    RAISE EXCEPTION 'superduper: listener "%": table % has no primary key', v_name, v_source
      USING HINT = 'Outputs are joined to their rows by primary key: add one, e.g. ALTER TABLE ... ADD PRIMARY KEY (...).';
  END IF;
  IF v_pk && ARRAY['output', '_stamp', '_computed_at'] THEN
    RAISE EXCEPTION 'superduper: listener "%": primary key column of % is named like an outputs column (output, _stamp, _computed_at)', v_name, v_source
      USING HINT = 'Rename the primary key column.';
  END IF;

  SELECT k.name INTO v_missing FROM unnest(v_keys) AS k(name)
  WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = v_source AND a.attname = k.name AND a.attnum > 0 AND NOT a.attisdropped)
  LIMIT 1;
  IF v_missing IS NOT NULL THEN
    RAISE EXCEPTION 'superduper: listener "%": table % has no column %', v_name, v_source, quote_ident(v_missing)
      USING HINT = 'Columns of ' || v_source::text || ': ' || (
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
        WHERE attrelid = v_source AND attnum > 0 AND NOT attisdropped);
  END IF;
  SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord) INTO v_key_types
  FROM unnest(v_keys) WITH ORDINALITY AS k(name, ord)
  JOIN pg_attribute a ON a.attrelid = v_source AND a.attname = k.name;

  -- A filter is one boolean expression over the table's columns. Opening it as a
  -- cursor rejects anything that is not a single SELECT (so no "; DROP ...").
  IF p_spec ->> 'filter' IS NOT NULL THEN
    BEGIN
      OPEN v_cursor FOR EXECUTE format(E'SELECT 1 FROM %s AS src WHERE (\n%s\n) LIMIT 0',
                                       superduper._qualify(v_schema, v_table), p_spec ->> 'filter');
      CLOSE v_cursor;
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION 'superduper: listener "%": invalid filter %: %', v_name, quote_literal(p_spec ->> 'filter'), SQLERRM
        USING HINT = 'A filter is a boolean SQL expression over the columns of ' || v_source::text
                     || ', evaluated with search_path = pg_catalog (schema-qualify your own functions).';
    END;
  END IF;

  SELECT * INTO v_model FROM superduper._models WHERE name = p_spec ->> 'model';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper: listener "%": unknown model "%"', v_name, p_spec ->> 'model'
      USING HINT = 'Register the model first, e.g. SELECT superduper.apply(''{"type": "model", "name": ..., "runtime": ...}''). '
                   || 'Known models: ' || coalesce((SELECT string_agg(quote_literal(name), ', ' ORDER BY name) FROM superduper._models), '(none)');
  END IF;
  v_output_type := superduper._output_sql_type(v_model.name, v_model.output);

  v_output_table := 'out_' || v_name || CASE WHEN p_state = 'building' THEN '__v' || p_version ELSE '' END;
  IF to_regclass(superduper._qualify('superduper', v_output_table)) IS NOT NULL THEN
    RAISE EXCEPTION 'superduper: listener "%": outputs table superduper.% already exists', v_name, quote_ident(v_output_table)
      USING HINT = 'It may be kept from a removed listener: drop or rename it, or choose another listener name.';
  END IF;

  INSERT INTO superduper._listeners (name, version, state, model, source, source_schema, source_table,
    keys, key_types, pk, pk_types, filter, output_table, output_type, settings, spec, spec_hash)
  VALUES (v_name, p_version, p_state, v_model.name, v_source, v_schema, v_table,
    v_keys, v_key_types, v_pk, v_pk_types, p_spec ->> 'filter', v_output_table, v_output_type,
    p_spec -> 'settings', p_spec, encode(sha256(convert_to(p_spec::text, 'UTF8')), 'hex'))
  RETURNING id INTO v_id;

  v_vars := superduper._listener_vars(v_id);
  EXECUTE format('CREATE TABLE %s (%s, output %s, _stamp bigint NOT NULL DEFAULT 0, '
                 '_computed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (%s))',
                 v_vars ->> 'outputs', v_vars ->> 'pk_columns_ddl', v_output_type, v_vars ->> 'pk_cols');
  -- Whoever may read the source may read its outputs (as of now: later grants on
  -- the source are not copied; superduper.like() also checks the source itself).
  PERFORM superduper._copy_select_grants(v_source, (v_vars ->> 'outputs')::regclass);
  EXECUTE format('COMMENT ON TABLE %s IS %L', v_vars ->> 'outputs',
                 format('Outputs of superduper listener %s (version %s): model %s on %s of %s. Join on %s.',
                        v_name, p_version, v_model.name, array_to_string(v_keys, ', '), v_source,
                        array_to_string(v_pk, ', ')));

  PERFORM superduper._vector_indexes_attach(v_id);
  PERFORM superduper._listener_code_create(v_id);
  PERFORM superduper._listener_backfill_plan(v_id);
  RETURN v_id;
END
$$;

-- Takes what DDL on listener versions needs before it touches anything: the
-- versions (and those reading their outputs, down the chain) exclusively, then
-- their source and outputs tables in ACCESS EXCLUSIVE mode, upstream first.
--
-- Why: a sidecar's claim or write locks a listener's tables in its own order
-- (outputs, then source), users' deletes in theirs (source, then outputs
-- through the delete trigger), and dropping triggers and tables in yet another
-- made a remove fail with "deadlock detected". Sidecar transactions take their
-- listener's lock in shared mode before any table (see the claim, claim_chunk
-- and write templates, and superduper._fail), so DDL waits here for the work in
-- flight to commit, and work that starts later waits for the DDL. Tables are
-- locked in chain order, as users' writes reach them. Held to the end of the
-- transaction; taking it twice is harmless.
CREATE OR REPLACE FUNCTION superduper._lock_listeners(p_ids integer[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids integer[];
  v_relation regclass;
BEGIN
  WITH RECURSIVE down(id) AS (
    SELECT id FROM unnest(p_ids) AS id WHERE id IS NOT NULL
    UNION
    SELECT d.id FROM down
    JOIN superduper._listeners AS l ON l.id = down.id
    JOIN superduper._listeners AS d ON d.source_schema = 'superduper' AND d.source_table = l.output_table
  )
  SELECT array_agg(id ORDER BY id) INTO v_ids FROM down;
  PERFORM pg_advisory_xact_lock(@{locks.listener_namespace}, id) FROM unnest(v_ids) AS id ORDER BY id;

  FOR v_relation IN
    WITH RECURSIVE depth(id, depth) AS (
      SELECT l.id, 0 FROM superduper._listeners AS l
      WHERE NOT EXISTS (SELECT 1 FROM superduper._listeners AS u
                        WHERE l.source_schema = 'superduper' AND l.source_table = u.output_table)
      UNION
      SELECT d.id, depth.depth + 1 FROM depth
      JOIN superduper._listeners AS l ON l.id = depth.id
      JOIN superduper._listeners AS d ON d.source_schema = 'superduper' AND d.source_table = l.output_table
      WHERE depth.depth < 1000
    ), relations AS (
      SELECT c.oid::regclass AS relation, max(r.depth) AS depth
      FROM superduper._listeners AS l
      JOIN (SELECT id, max(depth) AS depth FROM depth GROUP BY id) AS dl ON dl.id = l.id
      CROSS JOIN LATERAL (VALUES (l.source, dl.depth),
                                 (to_regclass(superduper._qualify('superduper', l.output_table)), dl.depth + 1)) AS r(relation, depth)
      JOIN pg_class AS c ON c.oid = r.relation
      WHERE l.id = ANY (v_ids)
      GROUP BY c.oid
    )
    SELECT relation FROM relations ORDER BY depth, relation::oid
  LOOP
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', v_relation);
  END LOOP;
END
$$;

-- The first statement of every rendered claim and write. Takes the listener's
-- lock in shared mode before any table, so that DDL on the listener waits for
-- this transaction (superduper._lock_listeners) and this transaction for DDL
-- already under way. After such a wait the calling code may have been replaced
-- (a changed filter, a promotion) or dropped: then it must not run, and the
-- caller gets SQLSTATE @{sqlstates.code_replaced} and calls again, reaching the current code.
CREATE OR REPLACE FUNCTION superduper._enter_listener(p_id integer, p_code_version integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(@{locks.listener_namespace}, p_id);
  IF NOT EXISTS (SELECT 1 FROM superduper._listeners WHERE id = p_id AND code_version = p_code_version) THEN
    RAISE EXCEPTION 'superduper: the code of listener version % was replaced or dropped while this call waited', p_id
      USING ERRCODE = '@{sqlstates.code_replaced}', HINT = 'Call it again.';
  END IF;
END
$$;

-- Stops maintaining a listener version: drops its triggers and functions and
-- forgets its pending work (queued, logged, backfill). Its outputs stay.
CREATE OR REPLACE FUNCTION superduper._listener_stop(p_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM superduper._lock_listeners(ARRAY[p_id]);
  PERFORM superduper._listener_code_drop(p_id);
  DELETE FROM superduper._queue WHERE listener_id = p_id;
  DELETE FROM superduper._backfill WHERE listener_id = p_id;
  DELETE FROM superduper._backfill_cursor WHERE listener_id = p_id;
  -- Log entries of a listener that no longer exists are dropped by the next drain.
END
$$;

-- Drops a listener version: its code, queue, backfill, failures, its outputs
-- table unless kept, and its registry row.
CREATE OR REPLACE FUNCTION superduper._listener_version_drop(p_id integer, p_keep_outputs boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  l superduper._listeners;
BEGIN
  SELECT * INTO l FROM superduper._listeners WHERE id = p_id;
  PERFORM superduper._listener_stop(p_id);
  DELETE FROM superduper._failures WHERE listener_id = p_id;
  IF NOT p_keep_outputs THEN
    EXECUTE format('DROP TABLE IF EXISTS %s', superduper._qualify('superduper', l.output_table));
  END IF;
  DELETE FROM superduper._listeners WHERE id = p_id;
END
$$;

-- Listener versions that read the outputs of the given version.
CREATE OR REPLACE FUNCTION superduper._listener_dependents(p_id integer)
RETURNS SETOF superduper._listeners
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT d.* FROM superduper._listeners l
  JOIN superduper._listeners d ON d.source_schema = 'superduper' AND d.source_table = l.output_table
  WHERE l.id = p_id
$$;

-- Stops maintaining a version but keeps its outputs readable: its triggers,
-- worker functions and queued work go. Used while a replacement is built.
CREATE OR REPLACE FUNCTION superduper._listener_freeze(p_id integer, p_reason text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM superduper._listener_stop(p_id);
  UPDATE superduper._listeners SET frozen = true, error = 'frozen: ' || p_reason, updated_at = now()
  WHERE id = p_id;
END
$$;

-- Starts computing a new version of a listener from its current spec (after its
-- model changed, or the listener it reads from was rebuilt). The current version
-- keeps serving until the new one is complete.
CREATE OR REPLACE FUNCTION superduper._rebuild_listener(p_name text, p_reason text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_current superduper._listeners;
  v_building integer;
  v_version integer;
BEGIN
  SELECT * INTO v_current FROM superduper._listeners WHERE name = p_name AND state = 'current';
  SELECT id INTO v_building FROM superduper._listeners WHERE name = p_name AND state = 'building';
  IF v_building IS NOT NULL THEN
    PERFORM superduper._listener_version_drop(v_building, false);
  END IF;
  SELECT max(version) + 1 INTO v_version FROM superduper._listeners WHERE name = p_name;
  v_building := superduper._listener_version_create(v_current.spec, coalesce(v_version, v_current.version + 1), 'building');
  UPDATE superduper._listeners SET error = coalesce(error, 'rebuilding: ' || p_reason) WHERE id = v_current.id;
  RETURN v_building;
END
$$;

-- Called when a version's last backfill range is written. A building version
-- replaces the current one: one transaction drops the old outputs and renames
-- the new table to the stable name, so readers see old outputs or new ones,
-- never a mix.
CREATE OR REPLACE FUNCTION superduper._backfill_finished(p_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_new superduper._listeners;
  v_old superduper._listeners;
  v_dependent superduper._listeners;
  v_rebuild text[] := '{}';
  v_stable text;
BEGIN
  SELECT * INTO v_new FROM superduper._listeners WHERE id = p_id FOR UPDATE;
  IF NOT FOUND OR v_new.state <> 'building' THEN
    RETURN;
  END IF;
  SELECT * INTO v_old FROM superduper._listeners WHERE name = v_new.name AND state = 'current' FOR UPDATE;
  v_stable := 'out_' || v_new.name;
  PERFORM superduper._lock_listeners(ARRAY[v_new.id, v_old.id]);

  IF v_old.id IS NOT NULL THEN
    -- Listeners reading the old outputs stop being maintained (their triggers go
    -- with the old table) and are rebuilt from the new outputs.
    FOR v_dependent IN SELECT * FROM superduper._listener_dependents(v_old.id) LOOP
      IF v_dependent.state = 'building' THEN
        PERFORM superduper._listener_version_drop(v_dependent.id, false);
      ELSE
        PERFORM superduper._listener_freeze(v_dependent.id, 'listener "' || v_new.name || '" it reads from was rebuilt');
      END IF;
      v_rebuild := v_rebuild || v_dependent.name;
    END LOOP;
    PERFORM superduper._listener_version_drop(v_old.id, false);
  END IF;

  PERFORM superduper._listener_code_drop(v_new.id);
  EXECUTE format('ALTER TABLE superduper.%I RENAME TO %I', v_new.output_table, v_stable);
  EXECUTE format('ALTER INDEX %s RENAME TO %I',
    (SELECT indexrelid::regclass::text FROM pg_index
     WHERE indrelid = superduper._qualify('superduper', v_stable)::regclass AND indisprimary),
    left(v_stable, 58) || '_pkey');
  UPDATE superduper._listeners
  SET state = 'current', output_table = v_stable, error = NULL, updated_at = now()
  WHERE id = v_new.id;
  PERFORM superduper._listener_code_create(v_new.id);
  -- Searches now read the new outputs (and the query model follows the
  -- listener's, unless the vector index names its own).
  UPDATE superduper._vector_indexes SET query_model = coalesce(spec ->> 'query_model', v_new.model), updated_at = now()
  WHERE listener = v_new.name;
  PERFORM superduper._vector_index_code_create(id) FROM superduper._vector_indexes WHERE listener = v_new.name;

  PERFORM superduper._rebuild_listener(n, 'listener "' || v_new.name || '" it reads from was rebuilt')
  FROM (SELECT DISTINCT unnest(v_rebuild) AS n) AS d;
END
$$;

-- Normalizes a listener spec, so that equal intentions hash equally.
CREATE OR REPLACE FUNCTION superduper._listener_spec(p_spec jsonb, p_search_path text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text := p_spec ->> 'name';
  v_keys jsonb := coalesce(p_spec -> 'keys', CASE WHEN p_spec ? 'key' THEN jsonb_build_array(p_spec -> 'key') END);
  v_filter text := nullif(btrim(p_spec ->> 'filter'), '');
  v_source regclass;
  v_unknown text;
BEGIN
  IF v_name IS NULL OR v_name = '' THEN
    RAISE EXCEPTION 'superduper: a listener needs a "name"';
  END IF;
  IF octet_length(v_name) > 48 THEN
    RAISE EXCEPTION 'superduper: listener name "%" is too long (% bytes; at most 48, so that its outputs table name fits in 63)',
      v_name, octet_length(v_name);
  END IF;
  SELECT k INTO v_unknown FROM jsonb_object_keys(p_spec) AS k
  WHERE k NOT IN ('type', 'name', 'model', 'schema', 'table', 'keys', 'key', 'filter', 'settings') LIMIT 1;
  IF v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'superduper: listener "%": unknown field "%"', v_name, v_unknown
      USING HINT = 'Fields: name, model, table, schema, keys, filter, settings.';
  END IF;
  IF v_keys IS NULL OR jsonb_typeof(v_keys) <> 'array' OR jsonb_array_length(v_keys) = 0 THEN
    RAISE EXCEPTION 'superduper: listener "%": "keys" must be a non-empty array of column names', v_name;
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_keys) AS k WHERE jsonb_typeof(k) <> 'string' OR k #>> '{}' = '') THEN
    RAISE EXCEPTION 'superduper: listener "%": every key must be a column name (a non-empty string)', v_name;
  END IF;
  IF (SELECT count(DISTINCT k) <> count(*) FROM jsonb_array_elements_text(v_keys) AS k) THEN
    RAISE EXCEPTION 'superduper: listener "%": a key column is listed twice', v_name;
  END IF;
  v_source := superduper._resolve_source(v_name, p_spec ->> 'schema', p_spec ->> 'table', p_search_path);
  RETURN jsonb_build_object(
    'type', 'listener',
    'name', v_name,
    -- A listener that names no model embeds with the default text embedder.
    'model', coalesce(p_spec ->> 'model', '@{listeners.default_model}'),
    'schema', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_source),
    'table', (SELECT relname FROM pg_class WHERE oid = v_source),
    'keys', v_keys,
    'filter', v_filter,
    'settings', superduper._listener_settings(v_name, p_spec -> 'settings'));
END
$$;

CREATE OR REPLACE FUNCTION superduper._apply_listener(p_spec jsonb, p_search_path text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_spec jsonb := superduper._listener_spec(p_spec, p_search_path);
  v_name text := v_spec ->> 'name';
  v_current superduper._listeners;
  v_building superduper._listeners;
  v_id integer;
  v_old_filter text;
BEGIN
  SELECT * INTO v_current FROM superduper._listeners WHERE name = v_name AND state = 'current' FOR UPDATE;
  IF NOT FOUND THEN
    v_id := superduper._listener_version_create(v_spec, 1, 'current');
    RETURN jsonb_build_object('type', 'listener', 'name', v_name, 'action', 'created', 'version', 1,
      'backfill', (SELECT backfill_total FROM superduper._listeners WHERE id = v_id));
  END IF;
  SELECT * INTO v_building FROM superduper._listeners WHERE name = v_name AND state = 'building' FOR UPDATE;

  IF v_current.spec = v_spec THEN
    IF v_building.id IS NOT NULL THEN
      -- Back to the current spec: the half-built version is no longer wanted.
      PERFORM superduper._listener_version_drop(v_building.id, false);
      UPDATE superduper._listeners SET error = NULL WHERE id = v_current.id;
    END IF;
    RETURN jsonb_build_object('type', 'listener', 'name', v_name, 'action', 'unchanged', 'version', v_current.version);
  END IF;
  IF v_building.id IS NOT NULL AND v_building.spec = v_spec THEN
    RETURN jsonb_build_object('type', 'listener', 'name', v_name, 'action', 'unchanged', 'version', v_building.version,
                              'building', true);
  END IF;

  IF (v_current.spec - 'filter' - 'settings') = (v_spec - 'filter' - 'settings')
     AND v_building.id IS NULL AND NOT v_current.frozen THEN
    -- Same model, table and keys: existing outputs stay valid, update in place.
    v_old_filter := v_current.spec ->> 'filter';
    UPDATE superduper._listeners
    SET spec = v_spec, spec_hash = encode(sha256(convert_to(v_spec::text, 'UTF8')), 'hex'),
        settings = v_spec -> 'settings', filter = v_spec ->> 'filter', updated_at = now()
    WHERE id = v_current.id;
    IF v_old_filter IS DISTINCT FROM v_spec ->> 'filter' THEN
      PERFORM superduper._lock_listeners(ARRAY[v_current.id]);
      PERFORM superduper._listener_code_drop(v_current.id);
      PERFORM superduper._listener_code_create(v_current.id);
      -- Rows that no longer pass the filter lose their outputs; rows that now pass
      -- it are planned as a backfill (rows that already have outputs are skipped
      -- by the write's stamp check).
      EXECUTE format('DELETE FROM %s AS t WHERE NOT EXISTS (SELECT 1 FROM %s AS src WHERE %s AND %s)',
        superduper._qualify('superduper', v_current.output_table),
        superduper._qualify(v_current.source_schema, v_current.source_table),
        (SELECT string_agg(format('src.%1$I = t.%1$I', p), ' AND ') FROM unnest(v_current.pk) AS p),
        CASE WHEN v_spec ->> 'filter' IS NULL THEN 'true' ELSE E'(\n' || (v_spec ->> 'filter') || E'\n)' END);
      PERFORM superduper._listener_backfill_plan(v_current.id);
    END IF;
    RETURN jsonb_build_object('type', 'listener', 'name', v_name, 'action', 'updated', 'version', v_current.version);
  END IF;

  -- Another model, table or keys: a new version computes its own outputs and
  -- replaces the current one when it is complete.
  IF v_building.id IS NOT NULL THEN
    PERFORM superduper._listener_version_drop(v_building.id, false);
  END IF;
  v_id := superduper._listener_version_create(v_spec,
            (SELECT max(version) + 1 FROM superduper._listeners WHERE name = v_name), 'building');
  UPDATE superduper._listeners SET error = 'rebuilding: spec changed' WHERE id = v_current.id;
  RETURN jsonb_build_object('type', 'listener', 'name', v_name, 'action', 'rebuilding',
    'version', (SELECT version FROM superduper._listeners WHERE id = v_id),
    'backfill', (SELECT backfill_total FROM superduper._listeners WHERE id = v_id));
END
$$;

-- After an upgrade whose templates differ from the ones the database's listeners
-- and vector indexes were rendered from, the installer renders their code again
-- (in its transaction: dropping and recreating the triggers takes a brief lock
-- on each source table). Frozen versions have no code to render. Returns the
-- number of listener versions and vector indexes rendered.
CREATE OR REPLACE FUNCTION superduper._render_all_code()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id integer;
  v_count integer := 0;
BEGIN
  PERFORM superduper._lock_listeners(array_agg(id)) FROM superduper._listeners WHERE NOT frozen;
  FOR v_id IN SELECT id FROM superduper._listeners WHERE NOT frozen ORDER BY id LOOP
    PERFORM superduper._listener_code_drop(v_id);
    PERFORM superduper._listener_code_create(v_id);
    v_count := v_count + 1;
  END LOOP;
  FOR v_id IN SELECT id FROM superduper._vector_indexes ORDER BY id LOOP
    PERFORM superduper._vector_index_code_create(v_id);
    v_count := v_count + 1;
  END LOOP;
  RETURN v_count;
END
$$;
