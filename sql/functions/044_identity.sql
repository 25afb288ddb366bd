-- Component identity, as Superduper had it: every component has
--   identity  the SHA-256 of its spec without the fields its type declares
--             non-breaking (superduper._component_types.non_breaking), and
--   hash      the SHA-256 of its whole spec.
-- Applying a spec whose hash is the registered one changes nothing; one with
-- the same identity is updated in place (its outputs stay valid); one with
-- another identity is a breaking change: a new version is built beside the
-- current one, which keeps serving until the new one is complete. Each type's
-- _apply_<type> compares identities through superduper._identity; an
-- application's identity is that of its components (by type, name and
-- identity), so that it changes exactly when one of theirs does.

CREATE OR REPLACE FUNCTION superduper._spec_hash(p_spec jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT encode(sha256(convert_to(p_spec::text, 'UTF8')), 'hex') $$;

CREATE OR REPLACE FUNCTION superduper._identity(p_type text, p_spec jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_spec jsonb := p_spec - 'spec_version';
  v_path text;
BEGIN
  FOR v_path IN SELECT unnest(non_breaking) FROM superduper._component_types WHERE type = p_type LOOP
    v_spec := v_spec #- string_to_array(v_path, '.');
  END LOOP;
  RETURN superduper._spec_hash(v_spec);
END
$$;

-- The identity a component is going to: its newest version's (the one being
-- built, if any, else the current one); NULL when it is not there.
CREATE OR REPLACE FUNCTION superduper._component_identity(p_type text, p_name text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type superduper._component_types;
  v_identity text;
BEGIN
  SELECT * INTO v_type FROM superduper._component_types WHERE type = p_type;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF p_type = 'application' THEN
    -- Its components', in order.
    SELECT superduper._spec_hash(coalesce(jsonb_agg(jsonb_build_array(ac.type, ac.name, superduper._component_identity(ac.type, ac.name))
                                                    ORDER BY ac.position), '[]'))
    INTO v_identity
    FROM superduper._application_components ac WHERE ac.application = p_name;
    RETURN v_identity;
  END IF;
  EXECUTE format($q$SELECT superduper._identity($1, r.spec) FROM superduper.%I AS r
                    WHERE r.name = $2 ORDER BY (to_jsonb(r) ->> 'version')::integer DESC NULLS LAST LIMIT 1$q$, v_type.registry_table)
    INTO v_identity USING p_type, p_name;
  RETURN v_identity;
END
$$;

-- Every registered version of every component, with its identity and hash.
-- Types are read from superduper._component_types, each registry through its
-- rows as JSON (a registry without "version" or "state" columns has one
-- current version).
CREATE OR REPLACE FUNCTION superduper._components()
RETURNS TABLE (type text, name text, version integer, state text, identity text, hash text, spec jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type superduper._component_types;
BEGIN
  FOR v_type IN SELECT * FROM superduper._component_types t ORDER BY t.lookup_order LOOP
    RETURN QUERY EXECUTE format($q$
      SELECT %1$L::text, r.name, coalesce((to_jsonb(r) ->> 'version')::integer, 1), coalesce(to_jsonb(r) ->> 'state', 'current'),
             CASE WHEN %1$L = 'application' THEN superduper._component_identity(%1$L, r.name) ELSE superduper._identity(%1$L, r.spec) END,
             superduper._spec_hash(r.spec - 'spec_version'), r.spec
      FROM superduper.%2$I AS r ORDER BY r.name, 3$q$, v_type.type, v_type.registry_table);
  END LOOP;
END
$$;

-- For people: what is registered, version by version (a listener or vector
-- index being rebuilt has a 'building' version beside its 'current' one).
CREATE OR REPLACE VIEW superduper.component_versions AS SELECT * FROM superduper._components();
