-- A listener version's code: its triggers (../../triggers/) and worker functions
-- (../templates/claim.sql, claim_chunk.sql, and write.sql or, for outputs that
-- are lists, write_many.sql; both end with write_finish.sql), rendered from the
-- templates with the version's names, key types and filter compiled in, and
-- dropped again.

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
  v_follows boolean;
  v_followed text;
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

  -- A listener whose outputs are lists writes a row's elements only if the row
  -- still holds the value they were computed from: the claim reads a hash of
  -- its key columns, and the write compares it (see write_many.sql).
  SELECT v_vars || jsonb_build_object(
    'hash_src', 'md5(ROW(' || string_agg(format('src.%I', k.name), ', ' ORDER BY k.ord) || ')::text)',
    'hash_decl', CASE WHEN l.flatten THEN ', sd_hash text' ELSE '' END,
    'hash_select', CASE WHEN l.flatten
                        THEN ', md5(ROW(' || string_agg(format('src.%I', k.name), ', ' ORDER BY k.ord) || ')::text) AS sd_hash'
                        ELSE '' END,
    'hash_from_s', CASE WHEN l.flatten THEN ', s.sd_hash' ELSE '' END
  ) INTO v_vars
  FROM unnest(l.keys) WITH ORDINALITY AS k(name, ord);

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

  -- A listener whose source is another listener's outputs follows that
  -- listener's backfill (see 035_backfill_follow.sql): its triggers let what
  -- that backfill writes pass (its own backfill reads it), and its claim_chunk
  -- caps its ranges at the upstream's low water (v_cap, the key padded for a
  -- flattened upstream's _position). Other listeners render none of it.
  v_follows := l.source_schema = 'superduper'
               AND EXISTS (SELECT 1 FROM superduper._listeners AS u WHERE u.output_table = l.source_table);
  v_followed := CASE WHEN v_follows
                     THEN format('coalesce(pg_catalog.strpos(pg_catalog.current_setting(%L, true), %L) > 0, false)',
                                 'superduper.backfill_followers', ',' || l.id || ',')
                     ELSE 'false' END;
  SELECT v_vars || jsonb_build_object(
    'follows', v_follows::text,
    'followed', v_followed,
    'follow_skip', CASE WHEN v_follows
                        THEN E'IF ' || v_followed || E' THEN\n    -- Written by the backfill of the listener this one reads: its own backfill reads it.\n    RETURN NEW;\n  END IF;'
                        ELSE '' END,
    'pk_count', cardinality(l.pk)::text,
    'pk_row_cap', 'ROW(' || string_agg(format('(v_cap ->> %s)::%s', p.ord - 1, p.type), ', ' ORDER BY p.ord) || ')',
    'pk_row_next', 'ROW(' || string_agg(format('(v_next ->> %s)::%s', p.ord - 1, p.type), ', ' ORDER BY p.ord) || ')',
    -- Two keys as parameters $1 and $2, for a statement that compares them.
    'pk_row_arg1', 'ROW(' || string_agg(format('($1 ->> %s)::%s', p.ord - 1, p.type), ', ' ORDER BY p.ord) || ')',
    'pk_row_arg2', 'ROW(' || string_agg(format('($2 ->> %s)::%s', p.ord - 1, p.type), ', ' ORDER BY p.ord) || ')')
  INTO v_vars
  FROM unnest(l.pk, l.pk_types) WITH ORDINALITY AS p(name, type, ord);

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
-- runs BEFORE INSERT (measured ~8% cheaper than AFTER) and must see the key
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
  -- The common end of the two write functions, rendered first and inserted verbatim.
  v_vars := v_vars || jsonb_build_object('write_finish', superduper._render('write_finish', v_vars));
  FOREACH v_template IN ARRAY ARRAY['claim', 'claim_chunk',
                                    CASE WHEN (SELECT flatten FROM superduper._listeners WHERE id = p_id) THEN 'write_many' ELSE 'write' END,
                                    'insert', 'update', 'delete', 'truncate'] LOOP
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
  FOR v_id IN SELECT id FROM superduper._vector_indexes WHERE state = 'current' ORDER BY id LOOP
    PERFORM superduper._vector_index_code_create(v_id);
    v_count := v_count + 1;
  END LOOP;
  RETURN v_count;
END
$$;
