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

-- _dblink() (opens this session's request connection once) and _request() (one
-- round trip to a sidecar) call dblink's functions, schema-qualified with the
-- schema dblink is installed in, which is spelled into them here: resolving it
-- (and setting search_path) on every call cost more than the rest of a cached
-- call. Without dblink they raise a clear error; install it and run
-- "superduper install" again to enable model calls from SQL.
DO $install$
DECLARE
  v_dblink text := (SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                    WHERE e.extname = 'dblink');
BEGIN
  IF v_dblink IS NULL THEN
    -- Without dblink no statement can wait for a sidecar. A process hosting the
    -- database in-process (the embedded PGlite) answers instead: the call raises
    -- @{sqlstates.model_call} with the call in DETAIL, the host stores the answer (superduper.
    -- _store_answer) and runs the statement again, which finds it here. Anywhere
    -- else the error says what to install.
    CREATE OR REPLACE FUNCTION superduper._request(p_model text, p_kind text, p_input jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $body$
    DECLARE
      v_answer superduper._answers;
    BEGIN
      SELECT a.* INTO v_answer FROM superduper._answers a
      JOIN superduper._models m ON m.name = a.model AND m.spec_hash = a.model_hash
      WHERE a.model = p_model AND a.kind = p_kind AND a.input_md5 = md5(p_input::text);
      IF FOUND THEN
        IF v_answer.error IS NOT NULL THEN
          RAISE EXCEPTION 'superduper: model "%" failed: %', p_model, v_answer.error;
        END IF;
        RETURN v_answer.result;
      END IF;
      RAISE EXCEPTION 'superduper: model "%" cannot be called from SQL here: this database has no dblink, and no superduper process hosting it answered', p_model
        USING ERRCODE = '@{sqlstates.model_call}',
              DETAIL = jsonb_build_object('model', p_model, 'kind', p_kind, 'input', p_input)::text,
              HINT = 'On a PostgreSQL server: CREATE EXTENSION dblink; (it ships with contrib) and run "superduper install" again. '
                     || 'On the embedded database: query it while "superduper serve" (or your process) has it open. '
                     || 'Or compute embeddings in your application and pass vectors to superduper.like.';
    END
    $body$;
    RETURN;
  END IF;

  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION superduper._dblink()
    RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $body$
    BEGIN
      IF NOT coalesce('superduper' = ANY (%1$s.dblink_get_connections()), false) THEN
        BEGIN
          PERFORM %1$s.dblink_connect('superduper', superduper._dblink_connstr());
          -- Sidecars announce each answer; waiting callers watch for theirs.
          PERFORM %1$s.dblink_exec('superduper', 'LISTEN @{notify.answers.channel}');
          -- A request row lives for milliseconds and is worthless after a crash
          -- (the waiting statement dies too): no need to wait for its WAL flush.
          PERFORM %1$s.dblink_exec('superduper', 'SET synchronous_commit = off');
        EXCEPTION WHEN OTHERS THEN
          RAISE EXCEPTION 'superduper: could not open the dblink connection for model calls: %%', SQLERRM
            USING HINT = 'Set superduper.dblink to a connection string for this database (ALTER DATABASE ... SET superduper.dblink = ''...''), '
                         || 'or create a foreign server superduper_loopback with a user mapping; roles that are not superusers need a password.';
        END;
      END IF;
      RETURN 'superduper';
    END
    $body$
  $f$, v_dblink);

  -- The request goes in with a NOTIFY naming it, so a sidecar takes it by
  -- primary key; the answer comes back in the payload of a NOTIFY on
  -- superduper_answers ("<id>:done:<json>", "<id>:failed:<error>"), read from the
  -- connection's socket by dblink_get_notify without a round trip. An answer too
  -- long for a payload (8000 bytes) is announced as "<id>" and fetched from the
  -- row. Every 50 ms the row is looked at anyway.
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION superduper._request(p_model text, p_kind text, p_input jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $body$
    DECLARE
      v_conn text := superduper._dblink();
      v_insert text;
      v_id bigint;
      v_prefix text;
      v_note text;
      v_status text;
      v_result text;
      v_error text;
      v_timeout interval := coalesce(nullif(current_setting('superduper.request_timeout', true), '')::interval, interval '5 seconds');
      v_started timestamptz := clock_timestamp();
      v_next_poll timestamptz := clock_timestamp() + interval '50 milliseconds';
    BEGIN
      -- The input travels as a quoted literal: data, never SQL. An embedding's
      -- NOTIFY carries the model version and the input too (when they fit), so
      -- that a sidecar that knows the model computes without reading the row.
      v_insert := format(
        'WITH r AS (INSERT INTO superduper._requests (model, kind, input) VALUES (%%L, %%L, %%L::jsonb) RETURNING id, model, kind, input) '
        'SELECT r.id, pg_notify(''@{notify.work.channel}'', CASE WHEN r.kind = ''embed'' AND octet_length(r.input::text) < @{notify.work.embed_input_max} '
        'THEN ''@{notify.work.embed_prefix}'' || json_build_object(''id'', r.id, ''model'', r.model, ''hash'', m.spec_hash, ''input'', r.input) '
        'ELSE ''@{notify.work.request_prefix}'' || r.id END)::text '
        'FROM r LEFT JOIN superduper._models m ON m.name = r.model', p_model, p_kind, p_input);
      BEGIN
        SELECT t.id INTO v_id FROM %1$s.dblink(v_conn, v_insert) AS t(id bigint, n text);
      EXCEPTION WHEN OTHERS THEN
        -- This session's connection back to the database was lost (a restart
        -- of the server, pg_terminate_backend): open it again, once.
        PERFORM %1$s.dblink_disconnect(v_conn);
        v_conn := superduper._dblink();
        SELECT t.id INTO v_id FROM %1$s.dblink(v_conn, v_insert) AS t(id bigint, n text);
      END;
      v_prefix := v_id || ':';
      LOOP
        SELECT n.extra INTO v_note FROM %1$s.dblink_get_notify(v_conn) AS n
        WHERE n.notify_name = '@{notify.answers.channel}' AND (n.extra = v_id::text OR starts_with(n.extra, v_prefix))
        LIMIT 1;
        IF starts_with(v_note, v_prefix || '@{notify.answers.done}:') THEN
          RETURN substr(v_note, length(v_prefix || '@{notify.answers.done}:') + 1)::jsonb;
        ELSIF starts_with(v_note, v_prefix || '@{notify.answers.failed}:') THEN
          RAISE EXCEPTION 'superduper: model "%%" failed: %%', p_model, substr(v_note, length(v_prefix || '@{notify.answers.failed}:') + 1);
        END IF;
        IF v_note IS NOT NULL OR clock_timestamp() >= v_next_poll THEN
          SELECT t.status, t.result, t.error INTO v_status, v_result, v_error
          FROM %1$s.dblink(v_conn, format(
            'DELETE FROM superduper._requests WHERE id = %%s AND status IN (''done'', ''failed'') RETURNING status, result::text, error', v_id))
            AS t(status text, result text, error text);
          IF v_status = 'done' THEN
            RETURN v_result::jsonb;
          ELSIF v_status = 'failed' THEN
            RAISE EXCEPTION 'superduper: model "%%" failed: %%', p_model, v_error;
          END IF;
          v_next_poll := clock_timestamp() + interval '50 milliseconds';
        END IF;
        IF clock_timestamp() > v_started + v_timeout THEN
          PERFORM %1$s.dblink_exec(v_conn, format('DELETE FROM superduper._requests WHERE id = %%s', v_id));
          RAISE EXCEPTION 'superduper: no sidecar answered within %% (model "%%")', v_timeout, p_model
            USING HINT = superduper._sidecars_hint() || ' A function model is answered only by the process that registered it. '
                         || 'The wait is set by superduper.request_timeout.';
        END IF;
        -- As short as pg_sleep goes at first: it rounds up to whole milliseconds
        -- (measured: 1.09 ms a call), so an answer waits 0.5 ms on average to be
        -- seen; 5 ms after a second.
        PERFORM pg_sleep(CASE WHEN clock_timestamp() - v_started > interval '1 second' THEN 0.005 ELSE 0.0001 END);
      END LOOP;
    END
    $body$
  $f$, v_dblink);
END
$install$;

-- The embedded host's answer to a call that raised @{sqlstates.model_call} (see _request above):
-- an embedding goes to the query cache, anything else (and any failure) to
-- _answers, for the statement's next run.
CREATE OR REPLACE FUNCTION superduper._store_answer(p_model text, p_kind text, p_input jsonb, p_result jsonb, p_error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_hash text := (SELECT spec_hash FROM superduper._models WHERE name = p_model);
BEGIN
  IF v_hash IS NULL THEN
    RETURN; -- removed meanwhile: the next run raises "unknown model"
  END IF;
  IF p_kind = 'embed' AND p_error IS NULL THEN
    INSERT INTO superduper._embed_cache (model, model_hash, input_md5, embedding)
    VALUES (p_model, v_hash, md5(p_input #>> '{}'), ARRAY(SELECT (x)::real FROM jsonb_array_elements_text(p_result) AS x))
    ON CONFLICT (model, input_md5, model_hash) DO NOTHING;
    RETURN;
  END IF;
  DELETE FROM superduper._answers WHERE created_at < now() - interval '10 minutes';
  INSERT INTO superduper._answers (model, model_hash, kind, input_md5, result, error)
  VALUES (p_model, v_hash, p_kind, md5(p_input::text), p_result, p_error)
  ON CONFLICT (model, kind, input_md5, model_hash) DO UPDATE SET result = excluded.result, error = excluded.error, created_at = now();
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

-- Sidecars: claim pending requests for the models they can run: the one a
-- NOTIFY named (p_id), or else the oldest (the periodic look for requests whose
-- NOTIFY was missed). An embedding named by a NOTIFY is only read, not marked:
-- two sidecars computing the same query embedding waste a millisecond, while the
-- claim's write cost every request one (the first answer wins, see below). Other
-- requests (an LLM call may cost money) are claimed.
CREATE OR REPLACE FUNCTION superduper._claim_requests(p_worker text, p_functions text[], p_limit integer, p_id bigint DEFAULT NULL)
RETURNS TABLE (id bigint, model text, kind text, input jsonb, model_hash text, runtime text,
               model_config jsonb, model_artifact text, output jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_id IS NOT NULL THEN
    RETURN QUERY
    SELECT r.id, r.model, r.kind, r.input, m.spec_hash, m.runtime, m.config, m.artifact, m.output
    FROM superduper._requests r JOIN superduper._models m ON m.name = r.model
    WHERE r.id = p_id AND r.status = 'pending' AND r.kind = 'embed'
      AND (m.runtime <> '@{runtimes.process_local}' OR m.name = ANY (coalesce(p_functions, '{}')));
    IF FOUND THEN
      RETURN;
    END IF;
  END IF;
  RETURN QUERY
  WITH picked AS (
    SELECT r.id FROM superduper._requests r
    JOIN superduper._models m ON m.name = r.model
    WHERE r.status = 'pending'
      AND (p_id IS NULL OR r.id = p_id)
      AND (m.runtime <> '@{runtimes.process_local}' OR m.name = ANY (coalesce(p_functions, '{}')))
    ORDER BY r.id
    LIMIT p_limit
    FOR UPDATE OF r SKIP LOCKED
  ), claimed AS (
    UPDATE superduper._requests r SET status = 'running', claimed_by = p_worker
    FROM picked WHERE r.id = picked.id
    RETURNING r.id, r.model, r.kind, r.input
  )
  SELECT c.id, c.model, c.kind, c.input, m.spec_hash, m.runtime, m.config, m.artifact, m.output
  FROM claimed c JOIN superduper._models m ON m.name = c.model;
END
$$;

-- Sidecars: write results (and cache embeddings; the cache keeps about
-- superduper.embed_cache_size entries, default 10000, evicting the oldest).
CREATE OR REPLACE FUNCTION superduper._answer_requests(p_ids bigint[], p_results jsonb[], p_errors text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_limit bigint := coalesce(nullif(current_setting('superduper.embed_cache_size', true), '')::bigint, 10000);
  v_excess bigint;
  v_notes text[];
BEGIN
  -- An answer that fits in a NOTIFY payload goes in it, and its row goes (one
  -- DELETE; nothing if another sidecar answered first); a longer one is written
  -- to the row, for the caller to fetch. Notifications are delivered at commit.
  WITH notes AS (
    SELECT a.id, a.result, a.error,
           a.id || CASE WHEN a.error IS NULL THEN ':@{notify.answers.done}:' || a.result::text ELSE ':@{notify.answers.failed}:' || a.error END AS note
    FROM unnest(p_ids, p_results, p_errors) AS a(id, result, error)
  ), removed AS (
    DELETE FROM superduper._requests r USING notes n
    WHERE r.id = n.id AND octet_length(n.note) < @{notify.answers.note_max}
    RETURNING r.id, r.model, r.kind, r.input, n.result, n.error, n.note
  ), written AS (
    UPDATE superduper._requests r
    SET status = CASE WHEN n.error IS NULL THEN 'done' ELSE 'failed' END,
        result = n.result, error = n.error, done_at = clock_timestamp()
    FROM notes n
    WHERE r.id = n.id AND octet_length(n.note) >= @{notify.answers.note_max}
    RETURNING r.id, r.model, r.kind, r.input, n.result, n.error, r.id::text AS note
  ), answered AS (
    SELECT * FROM removed UNION ALL SELECT * FROM written
  ), cached AS (
    INSERT INTO superduper._embed_cache (model, model_hash, input_md5, embedding)
    SELECT a.model, m.spec_hash, md5(a.input #>> '{}'),
           ARRAY(SELECT (x)::real FROM jsonb_array_elements_text(a.result) AS x)
    FROM answered a JOIN superduper._models m ON m.name = a.model
    WHERE a.kind = 'embed' AND a.error IS NULL
    ON CONFLICT (model, input_md5, model_hash) DO NOTHING
  )
  SELECT array_agg(a.note) INTO v_notes FROM answered a;
  PERFORM pg_notify('@{notify.answers.channel}', n) FROM unnest(v_notes) AS n;

  -- Counting the cache on every answer would cost more than the answer: check on
  -- about one answer in 20, so the cache stays within a few entries of its bound.
  IF random() >= 0.05 THEN
    RETURN;
  END IF;
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
  -- Like the search functions it calls, it runs with the caller's rights and
  -- qualifies every name, so it pins no search_path (a SET clause per call costs).
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION superduper.like(p_index text, p_query text, p_k integer DEFAULT 10, p_filter jsonb DEFAULT NULL)
    RETURNS TABLE (id text, key text[], score double precision)
    LANGUAGE plpgsql STABLE
    AS $body$
    DECLARE
      q record;
    BEGIN
      SELECT * INTO q FROM superduper._like_query(p_index, p_k, p_query);
      RETURN QUERY SELECT * FROM superduper._like_search(q.index_id, q.embedding::%1$s, p_k, p_filter);
    END
    $body$
  $f$, v_vector);

  -- The same with the query given as a vector.
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION superduper.like(p_index text, p_query %1$s, p_k integer DEFAULT 10, p_filter jsonb DEFAULT NULL)
    RETURNS TABLE (id text, key text[], score double precision)
    LANGUAGE plpgsql STABLE
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
      RETURN QUERY SELECT * FROM superduper._like_search(v.id, p_query, p_k, p_filter);
    END
    $body$
  $f$, v_vector, regexp_replace(v_vector, '\.vector$', ''));

  -- Calls the index's search function (filtered or not).
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION superduper._like_search(p_index integer, p_query %1$s, p_k integer, p_filter jsonb)
    RETURNS TABLE (id text, key text[], score double precision)
    LANGUAGE plpgsql STABLE
    AS $body$
    BEGIN
      IF p_filter IS NULL THEN
        RETURN QUERY EXECUTE pg_catalog.format('SELECT * FROM superduper.%%I($1, $2)', '_vi' || p_index || '_search')
          USING p_query, p_k;
      ELSE
        RETURN QUERY EXECUTE pg_catalog.format('SELECT * FROM superduper.%%I($1, $2, $3)', '_vi' || p_index || '_search_filtered')
          USING p_query, p_k, p_filter;
      END IF;
    END
    $body$
  $f$, v_vector);
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

-- For superduper.like with a text query: the index and the query's embedding,
-- the arguments checked and the embedding cache read in one call (a cache hit is
-- the common case of a search); on a miss, _embed asks a sidecar.
CREATE OR REPLACE FUNCTION superduper._like_query(p_index text, p_k integer, p_query text, OUT index_id integer, OUT embedding real[])
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_model text;
BEGIN
  SELECT v.id, v.query_model, c.embedding INTO index_id, v_model, embedding
  FROM superduper._vector_indexes v
  LEFT JOIN superduper._models m ON m.name = v.query_model
  LEFT JOIN superduper._embed_cache c ON c.model = v.query_model AND c.model_hash = m.spec_hash AND c.input_md5 = md5(p_query)
  WHERE v.name = p_index;
  IF index_id IS NULL OR p_k IS NULL OR p_k < 1 OR p_k > 1000 THEN
    PERFORM superduper._like_index(p_index, p_k); -- raises the error that says which
  END IF;
  IF p_query IS NULL OR btrim(p_query) = '' THEN
    RAISE EXCEPTION 'superduper.like: index "%": the query is %', p_index, CASE WHEN p_query IS NULL THEN 'NULL' ELSE 'empty' END;
  END IF;
  IF embedding IS NULL THEN
    embedding := superduper._embed(v_model, p_query);
  END IF;
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
