-- Listeners: "keep the output of model M on columns K of table T up to date".
--
-- A listener has one row per version in superduper._listeners. This file: what a
-- listener spec may say (its fields, settings and source table, checked and
-- normalized so that equal intentions compare equal), and what applying one
-- does: nothing, an update in place, or a new version. Versions are made and
-- dropped in 033_listener_versions.sql, their code rendered in
-- 031_listener_code.sql, their backfill in 034_listener_backfill.sql, and DDL on
-- them is serialized with the sidecars' work in 032_listener_locks.sql.

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
  IF p_spec ? 'key' AND p_spec ? 'keys' THEN
    RAISE EXCEPTION 'superduper: listener "%": both "key" and "keys" given', v_name
      USING HINT = 'Give one: "key": "body" (one column) or "keys": ["title", "body"].';
  END IF;
  IF p_spec ? 'key' AND jsonb_typeof(p_spec -> 'key') IS DISTINCT FROM 'string' THEN
    RAISE EXCEPTION 'superduper: listener "%": "key" names one column (a string), not %', v_name, p_spec -> 'key'
      USING HINT = CASE WHEN jsonb_typeof(p_spec -> 'key') = 'array' THEN format('For a list of columns write "keys": %s.', p_spec -> 'key')
                        ELSE 'Write "key": "body", or "keys": ["title", "body"].' END;
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

-- Component type "listener" (see superduper._component_types).
SELECT superduper._component_type('listener', 'listener', '_listeners', 10, @{spec_versions.listener});
-- A filter or settings change keeps the outputs of the rows they still cover.
SELECT superduper._component_non_breaking('listener', ARRAY[@{identity.listener}]);

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

  IF superduper._identity('listener', v_current.spec) = superduper._identity('listener', v_spec)
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
