-- Listener versions. Creating one creates its outputs table, renders its
-- triggers and worker functions, and plans the backfill of existing rows, all in
-- the caller's transaction: either everything exists afterwards or nothing does.
-- A new version is built beside the current one, which keeps serving (frozen, if
-- its model changed) until the new one is complete (034_listener_backfill.sql).

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
  v_flatten boolean;
  v_reserved text[];
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
  v_flatten := coalesce((v_model.output ->> 'flatten')::boolean, false);
  v_reserved := ARRAY['output', '_stamp', '_computed_at']
                || CASE WHEN v_flatten THEN ARRAY['_position', '_start', '_end', '_headings'] ELSE '{}' END;
  IF v_pk && v_reserved THEN
    RAISE EXCEPTION 'superduper: listener "%": primary key column % of % is named like a column of its outputs table (%)',
      v_name, (SELECT quote_ident(p) FROM unnest(v_pk) AS p WHERE p = ANY (v_reserved) LIMIT 1), v_source, array_to_string(v_reserved, ', ')
      USING HINT = 'Rename the primary key column.';
  END IF;

  v_output_table := 'out_' || v_name || CASE WHEN p_state = 'building' THEN '__v' || p_version ELSE '' END;
  IF to_regclass(superduper._qualify('superduper', v_output_table)) IS NOT NULL THEN
    RAISE EXCEPTION 'superduper: listener "%": outputs table superduper.% already exists', v_name, quote_ident(v_output_table)
      USING HINT = 'It may be kept from a removed listener: drop or rename it, or choose another listener name.';
  END IF;

  INSERT INTO superduper._listeners (name, version, state, model, source, source_schema, source_table,
    keys, key_types, pk, pk_types, filter, output_table, output_type, settings, spec, spec_hash, flatten)
  VALUES (v_name, p_version, p_state, v_model.name, v_source, v_schema, v_table,
    v_keys, v_key_types, v_pk, v_pk_types, p_spec ->> 'filter', v_output_table, v_output_type,
    p_spec -> 'settings', p_spec, encode(sha256(convert_to(p_spec::text, 'UTF8')), 'hex'), v_flatten)
  RETURNING id INTO v_id;

  v_vars := superduper._listener_vars(v_id);
  IF v_flatten THEN
    -- One row per element of a row's list: its place in the list, and for a
    -- chunk its span in the text (character offsets) and heading path.
    EXECUTE format('CREATE TABLE %s (%s, _position integer NOT NULL, output %s, _start integer, _end integer, _headings text[], '
                   '_stamp bigint NOT NULL DEFAULT 0, _computed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (%s, _position))',
                   v_vars ->> 'outputs', v_vars ->> 'pk_columns_ddl', v_output_type, v_vars ->> 'pk_cols');
  ELSE
    EXECUTE format('CREATE TABLE %s (%s, output %s, _stamp bigint NOT NULL DEFAULT 0, '
                   '_computed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (%s))',
                   v_vars ->> 'outputs', v_vars ->> 'pk_columns_ddl', v_output_type, v_vars ->> 'pk_cols');
  END IF;
  -- Whoever may read the source may read its outputs (as of now: later grants on
  -- the source are not copied; superduper.like() also checks the source itself).
  PERFORM superduper._copy_select_grants(v_source, (v_vars ->> 'outputs')::regclass);
  EXECUTE format('COMMENT ON TABLE %s IS %L', v_vars ->> 'outputs',
                 format('Outputs of superduper listener %s (version %s): model %s on %s of %s. Join on %s.%s',
                        v_name, p_version, v_model.name, array_to_string(v_keys, ', '), v_source,
                        array_to_string(v_pk, ', '),
                        CASE WHEN v_flatten THEN ' One row per element of each row''s list, in _position order.' ELSE '' END));

  PERFORM superduper._vector_indexes_attach(v_id);
  PERFORM superduper._listener_code_create(v_id);
  PERFORM superduper._listener_backfill_plan(v_id);
  RETURN v_id;
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

-- Drops a listener version: its code, queue, backfill, failures, the triggers
-- keeping vector indexes' words on its outputs (070_vector_indexes.sql), its
-- outputs table unless kept, and its registry row.
CREATE OR REPLACE FUNCTION superduper._listener_version_drop(p_id integer, p_keep_outputs boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  l superduper._listeners;
  v_function regprocedure;
BEGIN
  SELECT * INTO l FROM superduper._listeners WHERE id = p_id;
  PERFORM superduper._listener_stop(p_id);
  DELETE FROM superduper._failures WHERE listener_id = p_id;
  FOR v_function IN
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = 'superduper'::regnamespace AND p.proname ~ ('^_vi[0-9]+_words_l' || p_id || '$')
  LOOP
    EXECUTE format('DROP FUNCTION %s CASCADE', v_function);
  END LOOP;
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
