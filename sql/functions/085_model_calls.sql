-- Calling a model from SQL: superduper.predict(), superduper.embed(), and the
-- cached _embed() behind embed() and like(). A call not answered from the cache
-- is one round trip to a sidecar (superduper._request, 080_model_requests.sql).
-- Embeddings are cached by (model, input), so a repeated query needs no round trip.

-- Checks a model for a call from SQL and returns it.
CREATE OR REPLACE FUNCTION superduper._callable_model(p_function text, p_model text)
RETURNS superduper._models
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m superduper._models;
BEGIN
  SELECT * INTO m FROM superduper._models WHERE name = p_model;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper.%: unknown model %', p_function, coalesce(quote_literal(p_model), 'NULL')
      USING HINT = 'Known models: ' || coalesce((SELECT string_agg(quote_literal(name), ', ' ORDER BY name) FROM superduper._models), '(none)');
  END IF;
  IF m.runtime = 'trained' AND m.artifact IS NULL THEN
    RAISE EXCEPTION 'superduper.%: model "%" has no trained version deployed yet', p_function, p_model
      USING HINT = 'Its trainer "' || (m.config ->> 'trainer') || '" deploys its first finished run; see superduper.training_runs.';
  END IF;
  RETURN m;
END
$$;

-- A model's prediction for one input, as JSON: for models that are not embedders
-- (classifiers, LLM prompts), or to see an embedding as a JSON array.
--   SELECT superduper.predict('sentiment', '"what a lovely day"');
CREATE OR REPLACE FUNCTION superduper.predict(p_model text, p_input jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM superduper._callable_model('predict', p_model);
  IF p_input IS NULL THEN
    RAISE EXCEPTION 'superduper.predict: model "%": the input is NULL', p_model;
  END IF;
  RETURN superduper._request(p_model, 'predict', p_input);
END
$$;

-- The embedding of a query, for the search functions; cached. Returns real[] so
-- that it does not depend on the schema pgvector lives in (superduper.embed casts).
CREATE OR REPLACE FUNCTION superduper._embed(p_model text, p_input text)
RETURNS real[]
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m superduper._models;
  v_cached real[];
  v_result jsonb;
BEGIN
  -- The cache first, in one query: a hit is the common case of a search.
  SELECT c.embedding INTO v_cached
  FROM superduper._embed_cache c JOIN superduper._models mo ON mo.name = c.model AND mo.spec_hash = c.model_hash
  WHERE c.model = p_model AND c.input_md5 = md5(p_input);
  IF FOUND THEN
    RETURN v_cached;
  END IF;
  m := superduper._callable_model('embed', p_model);
  IF m.output ->> 'type' <> 'vector' THEN
    RAISE EXCEPTION 'superduper.embed: model "%" outputs %, not vectors', p_model, m.output ->> 'type'
      USING HINT = 'Use superduper.predict for models that are not embedders.';
  END IF;
  IF p_input IS NULL OR btrim(p_input) = '' THEN
    RAISE EXCEPTION 'superduper.embed: model "%": the input is %', p_model, CASE WHEN p_input IS NULL THEN 'NULL' ELSE 'empty' END;
  END IF;
  v_result := superduper._request(p_model, 'embed', to_jsonb(p_input));
  RETURN ARRAY(SELECT (x)::real FROM jsonb_array_elements_text(v_result) AS x);
END
$$;

-- superduper.embed() names the vector type in its signature: it comes from
-- ../templates/embed.sql, with the type spelled in whatever schema pgvector lives
-- in. After _embed, which its SQL body calls (checked when it is created).
SELECT superduper._template_run('embed', jsonb_build_object('vector_type', superduper._vector_type()));
