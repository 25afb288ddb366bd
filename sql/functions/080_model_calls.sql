-- Model calls from any SQL statement: superduper.embed(), superduper.predict(),
-- superduper.like(). Models run in sidecars, so a call is a round trip through
-- the database:
--   1. the calling backend inserts a request row and NOTIFYs, in one autocommitted
--      statement on a dblink connection back to the same database (a function
--      cannot commit, and a NOTIFY is delivered only at commit);
--   2. a listening sidecar computes the result and writes it to the row;
--   3. the function polls the row through the same connection (its own snapshot
--      would never see the sidecar's commit) and returns the result, or raises a
--      clear error after superduper.request_timeout (default 5s).
-- Embeddings are cached by (model, input), so a repeated query needs no round trip.

-- The dblink connection string: the setting superduper.dblink if set (e.g.
-- 'host=... user=... password=...'), else the foreign server superduper_loopback
-- if it exists (CREATE SERVER ... FOREIGN DATA WRAPPER dblink_fdw, with a user
-- mapping), else this database through the local socket.
CREATE OR REPLACE FUNCTION superduper._dblink_connstr()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_setting text := nullif(current_setting('superduper.dblink', true), '');
  v_socket text := split_part(current_setting('unix_socket_directories'), ',', 1);
BEGIN
  IF v_setting IS NOT NULL THEN
    RETURN v_setting;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = 'superduper_loopback') THEN
    RETURN 'superduper_loopback';
  END IF;
  RETURN format('dbname=%s port=%s%s application_name=superduper_requests',
                quote_literal(current_database()), current_setting('port'),
                CASE WHEN btrim(v_socket) <> '' THEN ' host=' || quote_literal(btrim(v_socket)) ELSE '' END);
END
$$;

-- Opens this session's request connection once, and returns its name.
CREATE OR REPLACE FUNCTION superduper._dblink()
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_schema text;
BEGIN
  SELECT n.nspname INTO v_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'dblink';
  IF v_schema IS NULL THEN
    RAISE EXCEPTION 'superduper: model calls from SQL need the dblink extension, which is not installed in this database'
      USING HINT = 'CREATE EXTENSION dblink; (it ships with PostgreSQL''s contrib), or compute embeddings in your application.';
  END IF;
  EXECUTE format('SET LOCAL search_path = pg_catalog, %I, pg_temp', v_schema);
  IF NOT COALESCE('superduper' = ANY (dblink_get_connections()), false) THEN
    BEGIN
      PERFORM dblink_connect('superduper', superduper._dblink_connstr());
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION 'superduper: could not open the dblink connection for model calls: %', SQLERRM
        USING HINT = 'Set superduper.dblink to a connection string for this database (ALTER DATABASE ... SET superduper.dblink = ''...''), '
                     || 'or create a foreign server superduper_loopback with a user mapping; roles that are not superusers need a password.';
    END;
  END IF;
  RETURN 'superduper';
END
$$;

-- One round trip to a sidecar; returns the result as JSON.
CREATE OR REPLACE FUNCTION superduper._request(p_model text, p_kind text, p_input jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_conn text := superduper._dblink();
  v_schema text;
  v_id bigint;
  v_status text;
  v_result text;
  v_error text;
  v_timeout interval := coalesce(nullif(current_setting('superduper.request_timeout', true), '')::interval, interval '5 seconds');
  v_deadline timestamptz;
  v_pause double precision := 0.0002;
BEGIN
  SELECT n.nspname INTO v_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'dblink';
  EXECUTE format('SET LOCAL search_path = pg_catalog, %I, pg_temp', v_schema);
  v_deadline := clock_timestamp() + v_timeout;
  -- The input travels as a quoted literal: data, never SQL.
  SELECT t.id INTO v_id FROM dblink(v_conn, format(
    'WITH r AS (INSERT INTO superduper._requests (model, kind, input) VALUES (%L, %L, %L::jsonb) RETURNING id) '
    'SELECT id, pg_notify(''superduper'', ''request'')::text FROM r', p_model, p_kind, p_input)) AS t(id bigint, n text);
  LOOP
    SELECT t.status, t.result, t.error INTO v_status, v_result, v_error
    FROM dblink(v_conn, format(
      'DELETE FROM superduper._requests WHERE id = %s AND status IN (''done'', ''failed'') RETURNING status, result::text, error', v_id))
      AS t(status text, result text, error text);
    IF v_status = 'done' THEN
      RETURN v_result::jsonb;
    ELSIF v_status = 'failed' THEN
      RAISE EXCEPTION 'superduper: model "%" failed: %', p_model, v_error;
    END IF;
    IF clock_timestamp() > v_deadline THEN
      PERFORM dblink_exec(v_conn, format('DELETE FROM superduper._requests WHERE id = %s', v_id));
      RAISE EXCEPTION 'superduper: no sidecar answered within % (model "%")', v_timeout, p_model
        USING HINT = 'Start one: superduper start <uri> (a function model is answered only by the process that registered it). '
                     || 'The wait is set by superduper.request_timeout.';
    END IF;
    PERFORM pg_sleep(v_pause);
    v_pause := least(v_pause * 2, 0.02);
  END LOOP;
END
$$;

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
  m superduper._models := superduper._callable_model('embed', p_model);
  v_cached real[];
  v_result jsonb;
BEGIN
  IF m.output ->> 'type' <> 'vector' THEN
    RAISE EXCEPTION 'superduper.embed: model "%" outputs %, not vectors', p_model, m.output ->> 'type'
      USING HINT = 'Use superduper.predict for models that are not embedders.';
  END IF;
  IF p_input IS NULL OR btrim(p_input) = '' THEN
    RAISE EXCEPTION 'superduper.embed: model "%": the input is %', p_model, CASE WHEN p_input IS NULL THEN 'NULL' ELSE 'empty' END;
  END IF;
  SELECT c.embedding INTO v_cached FROM superduper._embed_cache c
  WHERE c.model = p_model AND c.input_md5 = md5(p_input) AND c.model_hash = m.spec_hash;
  IF FOUND THEN
    RETURN v_cached;
  END IF;
  v_result := superduper._request(p_model, 'embed', to_jsonb(p_input));
  RETURN ARRAY(SELECT (x)::real FROM jsonb_array_elements_text(v_result) AS x);
END
$$;

-- Sidecars: claim pending requests for the models they can run.
CREATE OR REPLACE FUNCTION superduper._claim_requests(p_worker text, p_functions text[], p_limit integer)
RETURNS TABLE (id bigint, model text, kind text, input jsonb, model_hash text, runtime text,
               model_config jsonb, model_artifact text, output jsonb)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  WITH picked AS (
    SELECT r.id FROM superduper._requests r
    JOIN superduper._models m ON m.name = r.model
    WHERE r.status = 'pending'
      AND (m.runtime <> 'function' OR m.name = ANY (coalesce(p_functions, '{}')))
    ORDER BY r.id
    LIMIT p_limit
    FOR UPDATE OF r SKIP LOCKED
  ), claimed AS (
    UPDATE superduper._requests r SET status = 'running', claimed_by = p_worker
    FROM picked WHERE r.id = picked.id
    RETURNING r.id, r.model, r.kind, r.input
  )
  SELECT c.id, c.model, c.kind, c.input, m.spec_hash, m.runtime, m.config, m.artifact, m.output
  FROM claimed c JOIN superduper._models m ON m.name = c.model
$$;

-- Sidecars: write results (and cache embeddings; the cache keeps at most
-- superduper.embed_cache_size entries, default 10000, evicting the oldest).
CREATE OR REPLACE FUNCTION superduper._answer_requests(p_ids bigint[], p_results jsonb[], p_errors text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_limit bigint := coalesce(nullif(current_setting('superduper.embed_cache_size', true), '')::bigint, 10000);
  v_excess bigint;
BEGIN
  WITH answered AS (
    UPDATE superduper._requests r
    SET status = CASE WHEN a.error IS NULL THEN 'done' ELSE 'failed' END,
        result = a.result, error = a.error, done_at = clock_timestamp()
    FROM unnest(p_ids, p_results, p_errors) AS a(id, result, error)
    WHERE r.id = a.id
    RETURNING r.model, r.kind, r.input, a.result, a.error
  )
  INSERT INTO superduper._embed_cache (model, model_hash, input_md5, embedding)
  SELECT a.model, m.spec_hash, md5(a.input #>> '{}'),
         ARRAY(SELECT (x)::real FROM jsonb_array_elements_text(a.result) AS x)
  FROM answered a JOIN superduper._models m ON m.name = a.model
  WHERE a.kind = 'embed' AND a.error IS NULL
  ON CONFLICT (model, input_md5, model_hash) DO NOTHING;

  SELECT count(*) - v_limit INTO v_excess FROM superduper._embed_cache;
  IF v_excess > 0 THEN
    DELETE FROM superduper._embed_cache c
    USING (SELECT model, input_md5, model_hash FROM superduper._embed_cache ORDER BY created_at LIMIT v_excess) AS old
    WHERE c.model = old.model AND c.input_md5 = old.input_md5 AND c.model_hash = old.model_hash;
  END IF;
END
$$;

-- Functions whose signature names the vector type are created here, with the
-- type spelled in whatever schema pgvector lives in.
DO $install$
DECLARE
  v_vector text := superduper._vector_type();
BEGIN
  -- The embedding of p_input by model p_model. STABLE, so that
  --   ORDER BY embedding <=> superduper.embed('m', 'text') LIMIT 10
  -- embeds once and can use an HNSW index.
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION superduper.embed(p_model text, p_input text)
    RETURNS %1$s
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS 'SELECT superduper._embed(p_model, p_input)::%1$s'
  $f$, v_vector);

  -- The k source rows nearest to a text query: their primary key (id, the key
  -- as text when it is one column; key, every column as text) and score (higher
  -- is nearer: 1 - cosine distance, -L2 distance, or the inner product).
  --   SELECT d.title, l.score
  --   FROM superduper.like('docs_index', 'reset my password', 5) AS l
  --   JOIN docs d ON d.id = l.id::integer;
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION superduper.like(p_index text, p_query text, p_k integer DEFAULT 10, p_filter jsonb DEFAULT NULL)
    RETURNS TABLE (id text, key text[], score double precision)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $body$
    DECLARE
      v superduper._vector_indexes := superduper._like_index(p_index, p_k);
    BEGIN
      IF p_query IS NULL OR btrim(p_query) = '' THEN
        RAISE EXCEPTION 'superduper.like: index "%%": the query is %%', p_index, CASE WHEN p_query IS NULL THEN 'NULL' ELSE 'empty' END;
      END IF;
      RETURN QUERY EXECUTE format('SELECT * FROM superduper.%%I($1::%1$s, $2, $3)', '_vi' || v.id || '_search')
        USING superduper._embed(v.query_model, p_query), p_k, p_filter;
    END
    $body$
  $f$, v_vector);

  -- The same with the query given as a vector.
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION superduper.like(p_index text, p_query %1$s, p_k integer DEFAULT 10, p_filter jsonb DEFAULT NULL)
    RETURNS TABLE (id text, key text[], score double precision)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $body$
    DECLARE
      v superduper._vector_indexes := superduper._like_index(p_index, p_k);
      v_dim integer := superduper._model_dim(v.query_model);
    BEGIN
      IF p_query IS NULL THEN
        RAISE EXCEPTION 'superduper.like: index "%%": the query is NULL', p_index;
      END IF;
      IF %2$s.vector_dims(p_query) <> v_dim THEN
        RAISE EXCEPTION 'superduper.like: index "%%" holds vectors of %% dimensions; the query has %%', p_index, v_dim, %2$s.vector_dims(p_query);
      END IF;
      RETURN QUERY EXECUTE format('SELECT * FROM superduper.%%I($1, $2, $3)', '_vi' || v.id || '_search')
        USING p_query, p_k, p_filter;
    END
    $body$
  $f$, v_vector, regexp_replace(v_vector, '\.vector$', ''));
END
$install$;

-- Checks the arguments common to both forms of superduper.like. It reads only
-- the registry, so it runs with its owner's rights: callers need none on it.
CREATE OR REPLACE FUNCTION superduper._like_index(p_index text, p_k integer)
RETURNS superduper._vector_indexes
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v superduper._vector_indexes;
BEGIN
  SELECT * INTO v FROM superduper._vector_indexes WHERE name = p_index;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper.like: unknown vector index %', coalesce(quote_literal(p_index), 'NULL')
      USING HINT = 'Vector indexes: ' || coalesce((SELECT string_agg(quote_literal(name), ', ' ORDER BY name) FROM superduper._vector_indexes), '(none)');
  END IF;
  IF p_k IS NULL OR p_k < 1 OR p_k > 1000 THEN
    RAISE EXCEPTION 'superduper.like: index "%": k must be between 1 and 1000, not %', p_index, coalesce(p_k::text, 'NULL');
  END IF;
  RETURN v;
END
$$;

-- The vector dimension a model outputs (registry only, so owner's rights).
CREATE OR REPLACE FUNCTION superduper._model_dim(p_model text)
RETURNS integer
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT (output ->> 'dim')::integer FROM superduper._models WHERE name = p_model
$$;
