-- Small helpers used by the rest of the SQL layer. Recreated on every install.

-- Fills a template from superduper._templates in one pass: every {{name}} is
-- replaced by p_vars->>name. Values are inserted verbatim, so callers quote them
-- (quote_ident, quote_literal, format('%I')) before they get here. One pass means
-- a value that itself contains "{{x}}" is never expanded again.
CREATE OR REPLACE FUNCTION superduper._render(p_template text, p_vars jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_body text;
  v_out  text := '';
  v_open integer;
  v_close integer;
  v_name text;
BEGIN
  SELECT body INTO v_body FROM superduper._templates WHERE name = p_template;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper: template "%" is not installed', p_template
      USING HINT = 'Run "npx superduper install <uri>" to install or repair the SQL layer.';
  END IF;
  LOOP
    v_open := strpos(v_body, '{{');
    EXIT WHEN v_open = 0;
    v_close := strpos(substr(v_body, v_open + 2), '}}');
    IF v_close = 0 THEN
      RAISE EXCEPTION 'superduper: template "%" has an unclosed placeholder', p_template;
    END IF;
    v_name := substr(v_body, v_open + 2, v_close - 1);
    IF NOT p_vars ? v_name THEN
      RAISE EXCEPTION 'superduper: template "%" needs a value for {{%}}', p_template, v_name;
    END IF;
    v_out := v_out || substr(v_body, 1, v_open - 1) || (p_vars ->> v_name);
    v_body := substr(v_body, v_open + 2 + v_close + 1);
  END LOOP;
  RETURN v_out || v_body;
END
$$;

-- A dollar-quote tag that occurs in none of the given strings, so rendered
-- function bodies stay intact whatever the identifiers and filters contain.
CREATE OR REPLACE FUNCTION superduper._dollar_tag(p_texts text[])
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_tag text;
BEGIN
  LOOP
    v_tag := '$sd' || substr(md5(random()::text), 1, 12) || '$';
    EXIT WHEN NOT EXISTS (SELECT 1 FROM unnest(p_texts) AS t WHERE strpos(t, v_tag) > 0);
  END LOOP;
  RETURN v_tag;
END
$$;

-- Renders an install-time template (../templates/: functions whose text names
-- the schema dblink or pgvector is installed in) and runs it. The values are
-- quoted identifiers; {{q}} is a dollar-quote tag that occurs in none of them.
-- The templates are stored before the function files run (the build's
-- 000_templates), so that a function file can call this while it installs.
CREATE OR REPLACE FUNCTION superduper._template_run(p_template text, p_vars jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  EXECUTE superduper._render(p_template, p_vars || jsonb_build_object('q',
    superduper._dollar_tag(ARRAY(SELECT value FROM jsonb_each_text(p_vars)))));
END
$$;

-- Retry delay after p_attempts failures: exponential, capped.
CREATE OR REPLACE FUNCTION superduper._backoff(p_attempts integer, p_settings jsonb)
RETURNS interval
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT make_interval(secs => least(
    coalesce((p_settings ->> 'backoff_seconds')::float8, @{listeners.settings.backoff_seconds})
      * power(2, greatest(p_attempts - 1, 0))::float8,
    coalesce((p_settings ->> 'backoff_max_seconds')::float8, @{listeners.settings.backoff_max_seconds})))
$$;

-- Wakes sleeping sidecars after a change was logged, and only then: NOTIFY costs a
-- global lock at commit (it halves insert throughput when sent for every
-- statement). A sleeping sidecar holds advisory lock (@{locks.namespace}, @{locks.sleep}) exclusively
-- (superduper._sleep_lock). A writer's shared try-lock therefore fails exactly when
-- someone sleeps, and then it notifies. When it succeeds, the writer holds the
-- lock shared until it commits, so no sidecar can start sleeping before this
-- change is visible to the look a sidecar takes right after getting the lock.
-- The insert trigger template inlines the same test (it is the hot path).
CREATE OR REPLACE FUNCTION superduper._wake(p_listener integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT pg_try_advisory_xact_lock_shared(@{locks.namespace}, @{locks.sleep}) THEN
    PERFORM pg_notify('@{notify.work.channel}', p_listener::text);
  END IF;
END
$$;

-- Quotes a possibly NULL qualified name: schema.name, each part with quote_ident.
CREATE OR REPLACE FUNCTION superduper._qualify(p_schema text, p_name text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT quote_ident(p_schema) || '.' || quote_ident(p_name)
$$;

-- The pgvector type, schema-qualified wherever the extension was installed, so
-- functions that pin search_path can still name it.
CREATE OR REPLACE FUNCTION superduper._vector_type()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_schema text;
BEGIN
  SELECT n.nspname INTO v_schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
  WHERE e.extname = 'vector';
  IF v_schema IS NULL THEN
    RAISE EXCEPTION 'superduper: the pgvector extension is not installed in this database'
      USING HINT = 'Install pgvector on the server, then run CREATE EXTENSION vector (or "npx superduper install").';
  END IF;
  RETURN quote_ident(v_schema) || '.vector';
END
$$;

-- Whether this transaction is a plan's (superduper.plan, 043_plan.sql: the
-- apply it runs is rolled back), so that work only the real apply needs (an
-- HNSW graph over existing rows) is skipped.
CREATE OR REPLACE FUNCTION superduper._planning()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(current_setting('superduper.planning', true), '') = 'on' $$;

-- Registers a component type (superduper._component_types), or updates it: each
-- type's function file calls this once, so that apply and remove know it.
CREATE OR REPLACE FUNCTION superduper._component_type(p_type text, p_label text, p_registry_table text,
                                                      p_lookup_order integer, p_spec_version integer)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO superduper._component_types (type, label, registry_table, lookup_order, spec_version)
  VALUES (p_type, p_label, p_registry_table, p_lookup_order, p_spec_version)
  ON CONFLICT (type) DO UPDATE SET label = excluded.label, registry_table = excluded.registry_table,
    lookup_order = excluded.lookup_order, spec_version = excluded.spec_version
$$;

-- Declares which fields of a type's specs may change without a new version
-- (superduper._component_types.non_breaking): dotted paths such as "settings"
-- or "index.ef_search". Each type's function file calls this after
-- superduper._component_type; 044_identity.sql reads them.
CREATE OR REPLACE FUNCTION superduper._component_non_breaking(p_type text, p_paths text[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE superduper._component_types SET non_breaking = p_paths WHERE type = p_type
$$;
