-- The model registry: what a sidecar needs to run a model, stored in the database.

-- Stores model bytes by content hash and returns the hash. Storing the same bytes
-- twice is a no-op, so re-applying a model never duplicates its file.
CREATE OR REPLACE FUNCTION superduper.put_artifact(p_bytes bytea)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_sha text;
BEGIN
  IF p_bytes IS NULL OR length(p_bytes) = 0 THEN
    RAISE EXCEPTION 'superduper: an artifact cannot be empty';
  END IF;
  v_sha := encode(sha256(p_bytes), 'hex');
  INSERT INTO superduper._artifacts (sha256, bytes) VALUES (v_sha, p_bytes)
  ON CONFLICT (sha256) DO NOTHING;
  RETURN v_sha;
END
$$;

-- The SQL type of a model's output column, from the model's declared output.
CREATE OR REPLACE FUNCTION superduper._output_sql_type(p_model text, p_output jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type text := p_output ->> 'type';
  v_dim  integer;
BEGIN
  CASE v_type
    WHEN 'vector' THEN
      IF jsonb_typeof(p_output -> 'dim') IS DISTINCT FROM 'number' THEN
        RAISE EXCEPTION 'superduper: model "%": a vector output needs its dimension, e.g. {"type": "vector", "dim": 384}', p_model;
      END IF;
      v_dim := (p_output ->> 'dim')::integer;
      IF v_dim < 1 OR v_dim > 16000 THEN
        RAISE EXCEPTION 'superduper: model "%": vector dimension % is out of range (1 to 16000)', p_model, v_dim;
      END IF;
      RETURN superduper._vector_type() || '(' || v_dim || ')';
    WHEN 'jsonb' THEN RETURN 'jsonb';
    WHEN 'text' THEN RETURN 'text';
    WHEN 'float' THEN RETURN 'double precision';
    WHEN 'integer' THEN RETURN 'bigint';
    WHEN 'boolean' THEN RETURN 'boolean';
    ELSE
      RAISE EXCEPTION 'superduper: model "%": unknown output type %', p_model, coalesce(quote_literal(v_type), 'NULL')
        USING HINT = 'Use one of vector (with dim), jsonb, text, float, integer, boolean.';
  END CASE;
END
$$;

-- Component type "model" (see superduper._component_types).
SELECT superduper._component_type('model', 'model', '_models', 30, @{spec_versions.model});
-- Settings of how a model is called, not of what it computes: changing them
-- keeps its version and its outputs (044_identity.sql).
SELECT superduper._component_non_breaking('model', ARRAY[@{identity.model}]);

-- p_search_path is unused: a model names no table.
CREATE OR REPLACE FUNCTION superduper._apply_model(p_spec jsonb, p_search_path text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name    text := p_spec ->> 'name';
  v_runtime text := p_spec ->> 'runtime';
  v_output  jsonb := p_spec -> 'output';
  v_config  jsonb := coalesce(p_spec -> 'config', '{}');
  v_artifact text := p_spec ->> 'artifact';
  v_spec    jsonb;
  v_hash    text;
  v_old     superduper._models;
  v_rebuilt text[];
BEGIN
  IF v_name IS NULL OR v_name = '' OR length(v_name) > 63 THEN
    RAISE EXCEPTION 'superduper: a model needs a "name" of 1 to 63 characters';
  END IF;
  IF v_runtime IS NULL THEN
    RAISE EXCEPTION 'superduper: model "%": "runtime" is missing', v_name
      USING HINT = 'One of: ' || array_to_string(superduper._runtimes(), ', ');
  END IF;
  IF NOT v_runtime = ANY (superduper._runtimes()) THEN
    RAISE EXCEPTION 'superduper: model "%": unknown runtime "%"', v_name, v_runtime
      USING HINT = 'One of: ' || array_to_string(superduper._runtimes(), ', ');
  END IF;
  IF v_output IS NULL OR jsonb_typeof(v_output) <> 'object' THEN
    RAISE EXCEPTION 'superduper: model "%": "output" is missing, e.g. {"type": "vector", "dim": 384}', v_name;
  END IF;
  PERFORM superduper._output_sql_type(v_name, v_output);
  PERFORM 1 FROM jsonb_object_keys(v_output) AS k WHERE k NOT IN ('type', 'dim', 'flatten');
  IF FOUND THEN
    RAISE EXCEPTION 'superduper: model "%": unknown output field "%"', v_name,
      (SELECT k FROM jsonb_object_keys(v_output) AS k WHERE k NOT IN ('type', 'dim', 'flatten') LIMIT 1)
      USING HINT = 'An output has "type", "dim" (for vectors) and "flatten" (true: the model returns a list per row, one output row per element).';
  END IF;
  IF v_output ? 'flatten' AND jsonb_typeof(v_output -> 'flatten') <> 'boolean' THEN
    RAISE EXCEPTION 'superduper: model "%": output "flatten" must be true or false, not %', v_name, v_output -> 'flatten';
  END IF;
  IF jsonb_typeof(v_config) <> 'object' THEN
    RAISE EXCEPTION 'superduper: model "%": "config" must be a JSON object', v_name;
  END IF;
  -- A model's config is readable by anyone who can read superduper.models: a key
  -- there would be stored in plain text, so it is refused before it is written.
  -- (The value is not repeated in the message: it may be a real key.)
  PERFORM 1 FROM jsonb_object_keys(v_config) AS k
  WHERE k ~* '@{secrets.config_key}';
  IF FOUND THEN
    RAISE EXCEPTION 'superduper: model "%": config holds an API key or secret; keys are never stored in the database', v_name
      USING HINT = 'Put the key in an environment variable of the sidecars and name it in config.api_key_env.';
  END IF;
  IF jsonb_typeof(v_config -> 'api_key_env') = 'string' AND (v_config ->> 'api_key_env') !~ '@{secrets.env_name}' THEN
    RAISE EXCEPTION 'superduper: model "%": config.api_key_env must name an environment variable (letters, digits and _), not hold the key itself', v_name
      USING HINT = 'If you pasted a key there, rotate it.';
  END IF;
  IF v_runtime = 'chunker' THEN
    v_config := superduper._chunker_tokenizer(v_name, v_config);
  END IF;
  -- A trained model is its trainer's: deployed by it (047_trainers.sql), not applied.
  IF (v_runtime = 'trained' OR EXISTS (SELECT 1 FROM superduper._trainers WHERE model = v_name))
     AND coalesce(current_setting('superduper.deploying', true), '') = '' THEN
    RAISE EXCEPTION 'superduper: model "%": %', v_name,
      coalesce('it is trained by trainer "' || (SELECT name FROM superduper._trainers WHERE model = v_name) || '"', 'models of runtime "trained" are made by trainers')
      USING HINT = 'Apply a trainer ({"type": "trainer", ...}); superduper.deploy and superduper.rollback choose which of its runs the model is.';
  END IF;
  IF v_artifact IS NOT NULL AND NOT EXISTS (SELECT 1 FROM superduper._artifacts WHERE sha256 = v_artifact) THEN
    RAISE EXCEPTION 'superduper: model "%": artifact % is not stored', v_name, v_artifact
      USING HINT = 'Store the file first: SELECT superduper.put_artifact(<bytes>).';
  END IF;

  v_spec := jsonb_build_object('type', 'model', 'name', v_name, 'runtime', v_runtime,
                               'output', v_output, 'config', v_config, 'artifact', v_artifact);
  v_hash := encode(sha256(convert_to(v_spec::text, 'UTF8')), 'hex');

  SELECT * INTO v_old FROM superduper._models WHERE name = v_name FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO superduper._models (name, runtime, config, output, artifact, spec, spec_hash)
    VALUES (v_name, v_runtime, v_config, v_output, v_artifact, v_spec, v_hash);
    RETURN jsonb_build_object('type', 'model', 'name', v_name, 'action', 'created', 'version', 1);
  END IF;
  IF v_old.spec_hash = v_hash THEN
    RETURN jsonb_build_object('type', 'model', 'name', v_name, 'action', 'unchanged', 'version', v_old.version);
  END IF;
  IF superduper._identity('model', v_old.spec) = superduper._identity('model', v_spec) THEN
    -- Only how it is called changed (batch size, timeouts, its key's variable):
    -- the same version, its outputs kept; sidecars load it again by its new hash.
    UPDATE superduper._models SET config = v_config, spec = v_spec, spec_hash = v_hash, updated_at = now()
    WHERE name = v_name;
    RETURN jsonb_build_object('type', 'model', 'name', v_name, 'action', 'updated', 'version', v_old.version);
  END IF;

  UPDATE superduper._models
  SET runtime = v_runtime, config = v_config, output = v_output, artifact = v_artifact,
      spec = v_spec, spec_hash = v_hash, version = version + 1, updated_at = now()
  WHERE name = v_name;

  -- A new model means new outputs: every listener using it is recomputed as a new
  -- version. The current version keeps serving its old outputs, frozen (outputs
  -- of the new model must not mix into them), until the new one is complete;
  -- changes made meanwhile are captured by the new version's triggers.
  SELECT coalesce(array_agg(l.name ORDER BY l.name), '{}') INTO v_rebuilt
  FROM superduper._listeners l WHERE l.model = v_name AND l.state = 'current';
  -- Every version of them at once, a version still building from the model's
  -- last change included, before any DDL: freezing the current version locks
  -- its tables, and a sidecar's claim on the building version, holding that
  -- version's lock, waits for those tables (found as "deadlock detected" when
  -- a trained model was deployed again while its listeners were rebuilding).
  PERFORM superduper._lock_listeners(array_agg(l.id)) FROM superduper._listeners l WHERE l.name = ANY (v_rebuilt);
  PERFORM superduper._listener_freeze(l.id, 'model "' || v_name || '" changed; version being rebuilt')
  FROM superduper._listeners l WHERE l.model = v_name AND l.state = 'current';
  PERFORM superduper._rebuild_listener(n, 'model "' || v_name || '" changed') FROM unnest(v_rebuilt) AS n;
  -- Chunkers counting with this model's tokenizer take its files as they are
  -- now (superduper._chunker_tokenizer): each whose files changed becomes a new
  -- version and its listeners are rebuilt; one whose files did not is unchanged.
  PERFORM superduper._apply_model(m.spec, p_search_path)
  FROM superduper._models m WHERE m.runtime = 'chunker' AND m.config ->> 'tokenizer' = v_name;

  RETURN jsonb_build_object('type', 'model', 'name', v_name, 'action', 'updated',
                            'version', v_old.version + 1, 'rebuilding', to_jsonb(v_rebuilt));
END
$$;

-- Runtimes a sidecar knows how to run. Checked at apply time so that a typo fails
-- at once instead of when the first row is processed.
CREATE OR REPLACE FUNCTION superduper._runtimes()
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT ARRAY[@{runtimes.names}]
$$;
