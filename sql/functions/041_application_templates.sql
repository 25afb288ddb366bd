-- Application templates: an application spec that declares "variables" (each
-- with a type, a default and a description) and uses them as {{name}} in any
-- string of its name, description and components. Applied with the values
-- in "values" (superduper.apply), or given apart:
--
--   SELECT superduper.apply_template(template, '{"table": "docs", "column": "body"}');
--
-- A string that is one placeholder alone takes the value with its type (a
-- number for an integer setting); elsewhere the value is put in as text. A
-- value for no declared variable, a variable with neither value nor default,
-- a placeholder naming no declared variable, or a value of the wrong type is
-- refused, naming the application and the variable.

-- The types a variable may declare: what its values must be.
CREATE OR REPLACE FUNCTION superduper._template_types()
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['text', 'table', 'column', 'model', 'integer', 'number', 'boolean'] $$;

-- One variable's value, of its declared type: the given one, else the default.
-- Values given as text (the CLI's --var name=value) are read as the type.
CREATE OR REPLACE FUNCTION superduper._template_value(p_application text, p_name text, p_declared jsonb, p_given jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type text := coalesce(p_declared ->> 'type', 'text');
  v_value jsonb := coalesce(p_given, p_declared -> 'default');
  v_text text;
  v_bad boolean;
BEGIN
  IF v_value IS NULL OR v_value = 'null' THEN
    RAISE EXCEPTION 'superduper.apply: application "%": variable "%" has no value and no default', p_application, p_name
      USING HINT = format('Give it a value: --var %s=... on the command line, or "values": {"%s": ...} in the spec%s.', p_name, p_name,
                          coalesce(' (' || (p_declared ->> 'description') || ')', ''));
  END IF;
  v_text := CASE WHEN jsonb_typeof(v_value) = 'string' THEN v_value #>> '{}' ELSE v_value::text END;
  v_bad := CASE v_type
    WHEN 'integer' THEN v_text !~ '^-?[0-9]+$'
    WHEN 'number' THEN v_text !~ '^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$'
    WHEN 'boolean' THEN v_text NOT IN ('true', 'false')
    ELSE jsonb_typeof(v_value) NOT IN ('string', 'number') OR (v_type IN ('table', 'column', 'model') AND btrim(v_text) = '')
  END;
  IF v_bad THEN
    RAISE EXCEPTION 'superduper.apply: application "%": variable "%" must be %, not %', p_application, p_name,
      CASE v_type WHEN 'integer' THEN 'an integer' WHEN 'number' THEN 'a number' WHEN 'boolean' THEN 'true or false'
                  WHEN 'text' THEN 'text' ELSE format('a %s name', v_type) END,
      v_value::text;
  END IF;
  RETURN CASE v_type
    WHEN 'integer' THEN to_jsonb(v_text::numeric)
    WHEN 'number' THEN to_jsonb(v_text::numeric)
    WHEN 'boolean' THEN to_jsonb(v_text::boolean)
    ELSE to_jsonb(v_text)
  END;
END
$$;

-- The variables' values (given, else defaults), after checking the
-- declarations and that every value given is declared.
CREATE OR REPLACE FUNCTION superduper._template_values(p_application text, p_declared jsonb, p_given jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text;
  v_declared jsonb;
  v_unknown text;
  v_values jsonb := '{}';
BEGIN
  IF jsonb_typeof(p_declared) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'superduper.apply: application "%": "variables" must be an object of declarations like {"table": {"type": "table", "default": "docs"}}', p_application;
  END IF;
  IF p_given IS NOT NULL AND jsonb_typeof(p_given) <> 'object' THEN
    RAISE EXCEPTION 'superduper.apply: application "%": the values must be an object like {"table": "docs"}, not %', p_application, p_given::text;
  END IF;
  FOR v_name, v_declared IN SELECT key, value FROM jsonb_each(p_declared) LOOP
    IF v_name !~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN
      RAISE EXCEPTION 'superduper.apply: application "%": variable name % must be letters, digits and underscores', p_application, quote_literal(v_name);
    END IF;
    IF jsonb_typeof(v_declared) IS DISTINCT FROM 'object' THEN
      RAISE EXCEPTION 'superduper.apply: application "%": variable "%" must be declared as an object like {"type": "text", "default": ..., "description": ...}', p_application, v_name;
    END IF;
    SELECT string_agg(quote_literal(k), ', ' ORDER BY k) INTO v_unknown
    FROM jsonb_object_keys(v_declared) AS k WHERE k NOT IN ('type', 'default', 'description');
    IF v_unknown IS NOT NULL THEN
      RAISE EXCEPTION 'superduper.apply: application "%": variable "%": unknown field(s) %', p_application, v_name, v_unknown
        USING HINT = 'A variable has "type", "default" and "description".';
    END IF;
    IF v_declared ? 'type' AND NOT (v_declared ->> 'type' = ANY (superduper._template_types())) THEN
      RAISE EXCEPTION 'superduper.apply: application "%": variable "%": unknown type %', p_application, v_name, v_declared -> 'type'
        USING HINT = 'Types: ' || array_to_string(superduper._template_types(), ', ') || '.';
    END IF;
    v_values := v_values || jsonb_build_object(v_name, superduper._template_value(p_application, v_name, v_declared, p_given -> v_name));
  END LOOP;
  SELECT string_agg(quote_literal(k), ', ' ORDER BY k) INTO v_unknown
  FROM jsonb_object_keys(coalesce(p_given, '{}')) AS k WHERE NOT p_declared ? k;
  IF v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'superduper.apply: application "%": no variable named %', p_application, v_unknown
      USING HINT = 'Its variables: ' || coalesce((SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(p_declared) AS k), '(none)') || '.';
  END IF;
  RETURN v_values;
END
$$;

-- p_node with every {{name}} replaced by its value: a string that is one
-- placeholder alone becomes the value (with its type), otherwise the value's
-- text is put in. Object keys are left as they are.
CREATE OR REPLACE FUNCTION superduper._template_render(p_application text, p_node jsonb, p_values jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_text text;
  v_name text;
  v_whole text[];
BEGIN
  CASE jsonb_typeof(p_node)
    WHEN 'object' THEN
      RETURN coalesce((SELECT jsonb_object_agg(key, superduper._template_render(p_application, value, p_values)) FROM jsonb_each(p_node)), '{}');
    WHEN 'array' THEN
      RETURN coalesce((SELECT jsonb_agg(superduper._template_render(p_application, value, p_values) ORDER BY o)
                       FROM jsonb_array_elements(p_node) WITH ORDINALITY AS x(value, o)), '[]');
    WHEN 'string' THEN
      v_text := p_node #>> '{}';
      IF strpos(v_text, '{{') = 0 THEN
        RETURN p_node;
      END IF;
      FOR v_name IN SELECT DISTINCT m[1] FROM regexp_matches(v_text, '\{\{\s*([^{}]*?)\s*\}\}', 'g') AS m LOOP
        IF NOT p_values ? v_name THEN
          RAISE EXCEPTION 'superduper.apply: application "%": {{%}} names no declared variable', p_application, v_name
            USING HINT = 'Declare it in "variables": {"' || v_name || '": {"type": "text", "description": "..."}}.';
        END IF;
      END LOOP;
      v_whole := regexp_match(v_text, '^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$');
      IF v_whole IS NOT NULL THEN
        RETURN p_values -> v_whole[1];
      END IF;
      FOR v_name IN SELECT key FROM jsonb_each(p_values) LOOP
        v_text := regexp_replace(v_text, '\{\{\s*' || v_name || '\s*\}\}',
                                 replace(replace(p_values ->> v_name, '\', '\\'), '&', '\&'), 'g');
      END LOOP;
      RETURN to_jsonb(v_text);
    ELSE
      RETURN p_node;
  END CASE;
END
$$;

-- Applies an application template with these values (over any the template
-- holds in "values"): the same as superduper.apply of the template with them.
CREATE OR REPLACE FUNCTION superduper.apply_template(p_template jsonb, p_values jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql
AS $$
  SELECT superduper.apply((p_template - 'values') || jsonb_build_object('values', coalesce(p_template -> 'values', '{}') || coalesce(p_values, '{}')))
$$;
