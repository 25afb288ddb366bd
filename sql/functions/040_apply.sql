-- The public entry points for declaring and removing components from SQL. The
-- TypeScript API and the CLI call these same functions.

-- Applies one component spec, or an array of them in order, in the caller's
-- transaction. Returns what happened to each ("created", "unchanged", "updated",
-- "rebuilding").
--
--   SELECT superduper.apply('{"type": "listener", "name": "docs_embedding",
--                             "model": "minilm", "table": "docs", "keys": ["body"]}');
--
-- Deliberately without a pinned search_path: unqualified table names in specs are
-- looked up in the caller's search_path, which is captured here and passed on.
CREATE OR REPLACE FUNCTION superduper.apply(p_spec jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
  v_search_path text[] := pg_catalog.current_schemas(false);
  v_results jsonb := '[]';
  v_item jsonb;
BEGIN
  IF p_spec IS NULL THEN
    RAISE EXCEPTION 'superduper.apply: the spec is NULL';
  END IF;
  -- One apply at a time per database: two sessions creating the same listener
  -- would otherwise race on its outputs table.
  PERFORM pg_catalog.pg_advisory_xact_lock(@{locks.namespace}, @{locks.apply});
  IF pg_catalog.jsonb_typeof(p_spec) = 'array' THEN
    FOR v_item IN SELECT value FROM pg_catalog.jsonb_array_elements(p_spec) LOOP
      v_results := v_results || pg_catalog.jsonb_build_array(superduper._apply_one(v_item, v_search_path));
    END LOOP;
    RETURN v_results;
  END IF;
  RETURN superduper._apply_one(p_spec, v_search_path);
END
$$;

-- One spec: its type looked up in superduper._component_types, the spec brought
-- to the type's current spec_version, then the type's own _apply_<type>.
CREATE OR REPLACE FUNCTION superduper._apply_one(p_spec jsonb, p_search_path text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type superduper._component_types;
  v_result jsonb;
BEGIN
  IF jsonb_typeof(p_spec) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'superduper.apply: a spec must be a JSON object, not %', coalesce(jsonb_typeof(p_spec), 'NULL');
  END IF;
  SELECT * INTO v_type FROM superduper._component_types WHERE type = p_spec ->> 'type';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper.apply: unknown component type %', coalesce(quote_literal(p_spec ->> 'type'), '(missing "type")')
      USING HINT = 'Known types: ' || (SELECT string_agg(type, ', ' ORDER BY lookup_order) FROM superduper._component_types) || '.';
  END IF;
  EXECUTE format('SELECT superduper.%I($1, $2)', '_apply_' || v_type.type)
    INTO v_result USING superduper._spec_current(v_type, p_spec), p_search_path;
  EXECUTE format('UPDATE superduper.%I SET spec_version = $1 WHERE name = $2 AND spec_version <> $1', v_type.registry_table)
    USING v_type.spec_version, p_spec ->> 'name';
  RETURN v_result;
END
$$;

-- A spec as the type's current version reads it, without its "spec_version": a
-- spec that says none is taken as current; an older one goes through each
-- upgrade step, superduper._spec_<type>_<n>_to_<n+1>(jsonb); a newer one (from a
-- newer superduper, say in a package) is refused rather than half understood.
CREATE OR REPLACE FUNCTION superduper._spec_current(p_type superduper._component_types, p_spec jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_given jsonb := p_spec -> 'spec_version';
  v_version integer;
  v_spec jsonb := p_spec - 'spec_version';
  v_name text := coalesce(quote_literal(p_spec ->> 'name'), '(no name)');
BEGIN
  IF v_given IS NULL THEN
    RETURN v_spec;
  END IF;
  IF jsonb_typeof(v_given) <> 'number' OR v_given::text !~ '^[0-9]+$' OR (v_given::text)::numeric < 1 THEN
    RAISE EXCEPTION 'superduper.apply: % %: "spec_version" must be a whole number from 1, not %', p_type.label, v_name, v_given::text
      USING HINT = format('Omit it for the current version (%s).', p_type.spec_version);
  END IF;
  v_version := (v_given::text)::integer;
  IF v_version > p_type.spec_version THEN
    RAISE EXCEPTION 'superduper.apply: % %: spec_version % is newer than this database''s superduper reads (up to %)',
      p_type.label, v_name, v_version, p_type.spec_version
      USING HINT = 'Upgrade superduper where the spec is applied (npx superduper install, or ALTER EXTENSION superduper UPDATE), then apply it again.';
  END IF;
  FOR v_step IN v_version .. p_type.spec_version - 1 LOOP
    EXECUTE format('SELECT superduper.%I($1)', format('_spec_%s_%s_to_%s', p_type.type, v_step, v_step + 1)) INTO v_spec USING v_spec;
  END LOOP;
  RETURN v_spec;
END
$$;

-- Whether a component of that type and name is registered.
CREATE OR REPLACE FUNCTION superduper._component_exists(p_type text, p_name text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_table text := (SELECT registry_table FROM superduper._component_types WHERE type = p_type);
  v_exists boolean := false;
BEGIN
  IF v_table IS NOT NULL THEN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM superduper.%I WHERE name = $1)', v_table) INTO v_exists USING p_name;
  END IF;
  RETURN v_exists;
END
$$;

-- Removes a component by name: the first type (in lookup_order) whose registry
-- holds the name removes it, with what depends on it as that type decides.
CREATE OR REPLACE FUNCTION superduper.remove(p_name text, p_keep_outputs boolean DEFAULT false,
                                             p_cascade boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type superduper._component_types;
  v_result jsonb;
  v_labels text[];
BEGIN
  PERFORM pg_advisory_xact_lock(@{locks.namespace}, @{locks.apply});
  FOR v_type IN SELECT * FROM superduper._component_types ORDER BY lookup_order LOOP
    IF superduper._component_exists(v_type.type, p_name) THEN
      EXECUTE format('SELECT superduper.%I($1, $2, $3)', '_remove_' || v_type.type) INTO v_result USING p_name, p_keep_outputs, p_cascade;
      RETURN v_result;
    END IF;
  END LOOP;
  SELECT array_agg(label ORDER BY lookup_order) INTO v_labels FROM superduper._component_types;
  RAISE EXCEPTION 'superduper.remove: no % named %',
    CASE WHEN cardinality(v_labels) > 1
         THEN array_to_string(v_labels[1:cardinality(v_labels) - 1], ', ') || ' or ' || v_labels[cardinality(v_labels)]
         ELSE v_labels[1] END,
    coalesce(quote_literal(p_name), 'NULL')
    USING HINT = 'Listeners: ' || coalesce((SELECT string_agg(DISTINCT quote_literal(name), ', ') FROM superduper._listeners), '(none)');
END
$$;

-- Removes a listener: its triggers, queued work, failures and, unless
-- p_keep_outputs, its outputs table. Listeners that read its outputs are
-- removed too with p_cascade, and otherwise make this fail.
CREATE OR REPLACE FUNCTION superduper._remove_listener(p_name text, p_keep_outputs boolean, p_cascade boolean)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_version superduper._listeners;
  v_dependents text[];
  v_removed jsonb := '[]';
BEGIN
  -- What would be removed with it is refused unless p_cascade, before waiting
  -- for any lock.
  SELECT array_agg(DISTINCT d.name) INTO v_dependents
  FROM superduper._listeners l, superduper._listener_dependents(l.id) AS d
  WHERE l.name = p_name AND d.name <> p_name;
  IF NOT p_cascade AND EXISTS (SELECT 1 FROM superduper._vector_indexes WHERE listener = p_name) THEN
    RAISE EXCEPTION 'superduper.remove: listener "%" is searched by vector index(es) %', p_name,
      (SELECT string_agg(DISTINCT name, ', ' ORDER BY name) FROM superduper._vector_indexes WHERE listener = p_name)
      USING HINT = 'Remove those first, or pass p_cascade => true to remove them too.';
  END IF;
  IF NOT p_cascade AND v_dependents IS NOT NULL THEN
    RAISE EXCEPTION 'superduper.remove: listener "%" is read by listener(s) %', p_name, array_to_string(v_dependents, ', ')
      USING HINT = 'Remove those first, or pass p_cascade => true to remove them too.';
  END IF;

  -- Before any DDL: the work in flight on these versions, and on those reading
  -- their outputs (a cascade drops them), commits first.
  PERFORM superduper._lock_listeners(array_agg(id)) FROM superduper._listeners WHERE name = p_name;

  -- Vector indexes over this listener's outputs go with it, every version of
  -- them (one being built over another listener too).
  SELECT v_removed || coalesce(jsonb_agg(jsonb_build_object('type', 'vector_index', 'name', n, 'action', 'removed') ORDER BY n), '[]')
  INTO v_removed FROM (SELECT DISTINCT name AS n FROM superduper._vector_indexes WHERE listener = p_name) AS d;
  PERFORM superduper._vector_index_drop(v.id)
  FROM superduper._vector_indexes v
  WHERE v.name IN (SELECT name FROM superduper._vector_indexes WHERE listener = p_name);

  FOR i IN 1 .. coalesce(cardinality(v_dependents), 0) LOOP
    v_removed := v_removed || superduper.remove(v_dependents[i], p_keep_outputs, true);
  END LOOP;

  FOR v_version IN SELECT * FROM superduper._listeners WHERE name = p_name ORDER BY version LOOP
    PERFORM superduper._listener_version_drop(v_version.id, p_keep_outputs AND v_version.state = 'current');
  END LOOP;
  RETURN v_removed || jsonb_build_array(jsonb_build_object(
    'type', 'listener', 'name', p_name, 'action', 'removed',
    'outputs', CASE WHEN p_keep_outputs THEN 'kept' ELSE 'dropped' END));
END
$$;

-- What uses a model: listeners (any version), vector indexes embedding
-- queries with it, chunkers counting with its tokenizer; NULL when nothing.
CREATE OR REPLACE FUNCTION superduper._model_users(p_name text)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT array_agg(DISTINCT name ORDER BY name)
  FROM (SELECT name FROM superduper._listeners WHERE model = p_name
        UNION SELECT name FROM superduper._vector_indexes WHERE query_model = p_name
        -- A chunker counting with this model's tokenizer (021_chunker_tokenizer.sql).
        UNION SELECT name FROM superduper._models WHERE runtime = 'chunker' AND config ->> 'tokenizer' = p_name) AS u
$$;

CREATE OR REPLACE FUNCTION superduper._remove_model(p_name text, p_keep_outputs boolean, p_cascade boolean)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_users text[] := superduper._model_users(p_name);
  v_trainer text := (SELECT name FROM superduper._trainers WHERE model = p_name);
BEGIN
  IF v_trainer IS NOT NULL AND coalesce(current_setting('superduper.deploying', true), '') = '' THEN
    RAISE EXCEPTION 'superduper.remove: model "%" is trained by trainer "%"', p_name, v_trainer
      USING HINT = 'Remove the trainer: its model goes with it.';
  END IF;
  IF v_users IS NOT NULL THEN
    RAISE EXCEPTION 'superduper.remove: model "%" is used by %', p_name, array_to_string(v_users, ', ')
      USING HINT = 'Remove those listeners, vector indexes and chunkers first.';
  END IF;
  DELETE FROM superduper._models WHERE name = p_name;
  -- Model files no model refers to any more.
  DELETE FROM superduper._artifacts a
  WHERE NOT EXISTS (SELECT 1 FROM superduper._models m WHERE m.artifact = a.sha256
                      OR m.config::text LIKE '%' || a.sha256 || '%')
    -- Runs of trainers keep theirs, to be deployed again.
    AND NOT EXISTS (SELECT 1 FROM superduper._training_runs r WHERE r.artifact = a.sha256);
  RETURN jsonb_build_array(jsonb_build_object('type', 'model', 'name', p_name, 'action', 'removed'));
END
$$;

-- Queues a listener's failed rows again (all of them, or those whose primary
-- key is in p_pks, given as JSON arrays of text like '["42"]').
CREATE OR REPLACE FUNCTION superduper.retry(p_name text, p_pks jsonb[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id integer;
  v_count bigint;
BEGIN
  SELECT id INTO v_id FROM superduper._listeners WHERE name = p_name AND state = 'current';
  IF v_id IS NULL THEN
    RAISE EXCEPTION 'superduper.retry: no listener named %', coalesce(quote_literal(p_name), 'NULL');
  END IF;
  WITH moved AS (
    DELETE FROM superduper._failures
    WHERE listener_id = v_id AND (p_pks IS NULL OR pk = ANY (p_pks))
    RETURNING pk
  )
  INSERT INTO superduper._queue (listener_id, pk) SELECT v_id, pk FROM moved;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM superduper._wake(v_id);
  END IF;
  RETURN v_count;
END
$$;
