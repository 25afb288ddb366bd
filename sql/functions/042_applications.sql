-- Applications: a named group of components applied, versioned and removed as
-- one, in the caller's transaction like any apply.
--
--   SELECT superduper.apply('{"type": "application", "name": "docs_search",
--     "components": [{"type": "listener", "name": "docs_embedding", "model": "default-embedder",
--                     "table": "docs", "keys": ["body"]},
--                    {"type": "vector_index", "name": "docs_index", "listener": "docs_embedding"}]}');
--
-- A component the application held and its new spec no longer lists is
-- removed first (later ones first), unless another application holds it too;
-- then its components are applied in the order given (each after those it
-- uses), each as superduper.apply would apply it alone: unchanged, updated in
-- place, or rebuilt beside the current version. Removing the application removes its
-- components the same way, so that nothing is left half there: a component
-- something else still needs (a listener read by one outside the
-- application) makes the whole remove fail, naming it.

SELECT superduper._component_type('application', 'application', '_applications', 5, @{spec_versions.application});
SELECT superduper._component_non_breaking('application', ARRAY[@{identity.application}]);

CREATE OR REPLACE FUNCTION superduper._apply_application(p_spec jsonb, p_search_path text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text;
  v_template jsonb;
  v_values jsonb;
  v_old superduper._applications;
  v_child jsonb;
  v_result jsonb;
  v_results jsonb := '[]';
  v_removed jsonb := '[]';
  v_position integer := 0;
  v_changed boolean := false;
  v_gone record;
  v_unknown text;
  v_identity text;
BEGIN
  -- A template (041_application_templates.sql): rendered with its values
  -- first; the rest reads what it rendered.
  IF p_spec ? 'variables' THEN
    v_template := p_spec - 'values';
    v_values := superduper._template_values(coalesce(p_spec ->> 'name', '(no name)'), p_spec -> 'variables', p_spec -> 'values');
    p_spec := superduper._template_render(coalesce(p_spec ->> 'name', '(no name)'), v_template - 'variables', v_values);
  ELSIF p_spec ? 'values' THEN
    RAISE EXCEPTION 'superduper.apply: application "%": "values" given, but no "variables" declared', coalesce(p_spec ->> 'name', '(no name)')
      USING HINT = 'Declare each variable in "variables": {"table": {"type": "table", "default": "docs"}}, and use it as {{table}}.';
  END IF;
  v_name := p_spec ->> 'name';
  IF jsonb_typeof(p_spec -> 'name') IS DISTINCT FROM 'string' OR btrim(v_name) = '' THEN
    RAISE EXCEPTION 'superduper.apply: an application needs a "name" (a non-empty string)';
  END IF;
  SELECT string_agg(quote_literal(k), ', ' ORDER BY k) INTO v_unknown
  FROM jsonb_object_keys(p_spec) AS k WHERE k NOT IN ('type', 'name', 'components', 'description');
  IF v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'superduper.apply: application "%": unknown field(s) %', v_name, v_unknown
      USING HINT = 'An application has "name", "components" (an array of component specs), and optionally "description", and "variables" and "values" for a template.';
  END IF;
  IF jsonb_typeof(p_spec -> 'components') IS DISTINCT FROM 'array' OR jsonb_array_length(p_spec -> 'components') = 0 THEN
    RAISE EXCEPTION 'superduper.apply: application "%": "components" must be a non-empty array of component specs', v_name;
  END IF;
  -- Each child: an object with a type (not an application) and a name, listed once.
  FOR v_child IN SELECT value FROM jsonb_array_elements(p_spec -> 'components') LOOP
    v_position := v_position + 1;
    IF jsonb_typeof(v_child) IS DISTINCT FROM 'object' OR jsonb_typeof(v_child -> 'name') IS DISTINCT FROM 'string'
       OR jsonb_typeof(v_child -> 'type') IS DISTINCT FROM 'string' THEN
      RAISE EXCEPTION 'superduper.apply: application "%": component % must be a spec with "type" and "name"', v_name, v_position;
    END IF;
    IF v_child ->> 'type' = 'application' THEN
      RAISE EXCEPTION 'superduper.apply: application "%": component % is an application ("%"); applications do not nest', v_name, v_position, v_child ->> 'name'
        USING HINT = 'List that application''s components in this one, or apply the two applications side by side.';
    END IF;
  END LOOP;
  SELECT c ->> 'type' AS type, c ->> 'name' AS name INTO v_gone
  FROM jsonb_array_elements(p_spec -> 'components') AS c
  GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'superduper.apply: application "%": % "%" is listed twice', v_name, v_gone.type, v_gone.name;
  END IF;
  -- remove() looks applications up first: one named like a component of
  -- another type would hide it.
  IF EXISTS (SELECT 1 FROM superduper._component_types AS t
             WHERE t.type <> 'application' AND superduper._component_exists(t.type, v_name)) THEN
    RAISE EXCEPTION 'superduper.apply: application "%": a component is named "%" already', v_name, v_name
      USING HINT = 'Give the application a name of its own (superduper.remove would take the application for it).';
  END IF;

  SELECT * INTO v_old FROM superduper._applications WHERE name = v_name FOR UPDATE;
  v_identity := superduper._component_identity('application', v_name);

  -- What it held and no longer lists goes first (later ones first), unless
  -- another application holds it too: a vector index over a listener whose
  -- new version has no vectors must be gone before that version is built.
  IF v_old.name IS NOT NULL THEN
    FOR v_gone IN
      SELECT ac.type, ac.name FROM superduper._application_components AS ac
      WHERE ac.application = v_name
        AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_spec -> 'components') AS c
                        WHERE c ->> 'type' = ac.type AND c ->> 'name' = ac.name)
      ORDER BY ac.position DESC
    LOOP
      v_removed := v_removed || superduper._application_component_remove(v_name, v_gone.type, v_gone.name, false);
    END LOOP;
  END IF;

  -- Then the components, in order, each as apply would apply it alone.
  FOR v_child IN SELECT value FROM jsonb_array_elements(p_spec -> 'components') LOOP
    v_result := superduper._apply_one(v_child, p_search_path);
    v_results := v_results || CASE WHEN jsonb_typeof(v_result) = 'array' THEN v_result ELSE jsonb_build_array(v_result) END;
  END LOOP;
  v_changed := jsonb_array_length(v_removed) > 0
               OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_results) AS r WHERE r ->> 'action' IS DISTINCT FROM 'unchanged');

  IF v_old.name IS NULL THEN
    INSERT INTO superduper._applications (name, spec, template, variables) VALUES (v_name, p_spec, v_template, v_values);
  ELSIF v_changed OR v_old.spec IS DISTINCT FROM p_spec OR v_old.template IS DISTINCT FROM v_template
        OR v_old.variables IS DISTINCT FROM v_values THEN
    v_changed := true;
    UPDATE superduper._applications
    SET spec = p_spec, template = v_template, variables = v_values, updated_at = now()
    WHERE name = v_name;
  END IF;
  DELETE FROM superduper._application_components WHERE application = v_name;
  INSERT INTO superduper._application_components (application, position, type, name)
  SELECT v_name, o, c ->> 'type', c ->> 'name' FROM jsonb_array_elements(p_spec -> 'components') WITH ORDINALITY AS x(c, o);
  -- A new version when its identity changed: a component added, removed,
  -- moved, or changed in a breaking way (044_identity.sql).
  IF v_old.name IS NOT NULL AND superduper._component_identity('application', v_name) IS DISTINCT FROM v_identity THEN
    UPDATE superduper._applications SET version = version + 1 WHERE name = v_name;
  END IF;

  RETURN jsonb_build_object('type', 'application', 'name', v_name,
                            'action', CASE WHEN v_old.name IS NULL THEN 'created' WHEN v_changed THEN 'updated' ELSE 'unchanged' END,
                            'version', (SELECT version FROM superduper._applications WHERE name = v_name),
                            'components', v_removed || v_results);
END
$$;

-- Removes one component an application held, unless another application
-- holds it too, or it is a model something still uses (then it is kept, and
-- the result says by whom), or it is gone already (removed with another
-- one: a listener's vector index goes with it).
CREATE OR REPLACE FUNCTION superduper._application_component_remove(p_application text, p_type text, p_name text, p_keep_outputs boolean)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type superduper._component_types;
  v_other text;
  v_users text[];
  v_result jsonb;
BEGIN
  SELECT string_agg(quote_ident(application), ', ' ORDER BY application) INTO v_other
  FROM superduper._application_components WHERE type = p_type AND name = p_name AND application <> p_application;
  IF v_other IS NOT NULL THEN
    RETURN jsonb_build_array(jsonb_build_object('type', p_type, 'name', p_name, 'action', 'kept', 'held_by', v_other));
  END IF;
  SELECT * INTO v_type FROM superduper._component_types WHERE type = p_type;
  IF NOT FOUND THEN
    RETURN '[]';
  END IF;
  IF NOT superduper._component_exists(p_type, p_name) THEN
    RETURN '[]';
  END IF;
  -- A model something still computes with (a listener outside the
  -- application, or the current version of one of its own listeners that is
  -- being rebuilt with another model) stays registered: the application lets
  -- go of it, and it can be removed once nothing uses it.
  v_users := CASE WHEN p_type = 'model' THEN superduper._model_users(p_name) END;
  IF v_users IS NOT NULL THEN
    RETURN jsonb_build_array(jsonb_build_object('type', p_type, 'name', p_name, 'action', 'kept', 'used_by', array_to_string(v_users, ', ')));
  END IF;
  BEGIN
    EXECUTE format('SELECT superduper.%I($1, $2, false)', '_remove_' || p_type) INTO v_result USING p_name, p_keep_outputs;
  EXCEPTION WHEN raise_exception THEN
    -- The component's own refusal (it is used from outside the application),
    -- said as the application's.
    RAISE EXCEPTION 'superduper: application "%": cannot remove its % "%": %', p_application, v_type.label, p_name,
      regexp_replace(SQLERRM, '^superduper\.remove: ', '')
      USING HINT = 'Remove what uses it first, or keep it in the application.';
  END;
  RETURN CASE WHEN jsonb_typeof(v_result) = 'array' THEN v_result ELSE jsonb_build_array(v_result) END;
END
$$;

-- Removes an application: its components, later ones first, except those
-- another application holds too.
CREATE OR REPLACE FUNCTION superduper._remove_application(p_name text, p_keep_outputs boolean, p_cascade boolean)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_component record;
  v_removed jsonb := '[]';
BEGIN
  PERFORM 1 FROM superduper._applications WHERE name = p_name FOR UPDATE;
  FOR v_component IN
    SELECT type, name FROM superduper._application_components WHERE application = p_name ORDER BY position DESC
  LOOP
    v_removed := v_removed || superduper._application_component_remove(p_name, v_component.type, v_component.name, p_keep_outputs);
  END LOOP;
  DELETE FROM superduper._applications WHERE name = p_name;
  RETURN v_removed || jsonb_build_array(jsonb_build_object('type', 'application', 'name', p_name, 'action', 'removed'));
END
$$;

-- For people: each application, its version, the values of its variables
-- (applied from a template), and its components in order,
-- each with whether it is there (a component removed on its own is missing
-- until the application is applied again).
CREATE OR REPLACE VIEW superduper.applications AS
SELECT a.name, a.version, a.spec ->> 'description' AS description, a.variables,
       coalesce((SELECT jsonb_agg(jsonb_build_object('type', ac.type, 'name', ac.name,
                                                     'present', superduper._component_exists(ac.type, ac.name))
                                  ORDER BY ac.position)
                 FROM superduper._application_components ac WHERE ac.application = a.name), '[]') AS components,
       a.created_at, a.updated_at, a.spec_version
FROM superduper._applications a;
