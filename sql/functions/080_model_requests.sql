-- Model calls from any SQL statement (superduper.embed(), predict(), like()): the
-- round trip to a sidecar. Models run in sidecars, so a call goes through the
-- database:
--   1. the calling backend inserts a request row and NOTIFYs, in one autocommitted
--      statement on a dblink connection back to the same database (a function
--      cannot commit, and a NOTIFY is delivered only at commit);
--   2. a listening sidecar computes the result and answers in the payload of a
--      NOTIFY (or, when too long for one, in the row);
--   3. the caller watches its dblink connection for the answer (its own snapshot
--      would never see the sidecar's commit), looks at the row now and then, and
--      returns the result, or raises a clear error after
--      superduper.request_timeout (default 5s).
-- Both halves are here, the caller's (_request) and the sidecars'
-- (_claim_requests, _answer_requests), with the embedded host's (_store_answer)
-- for a database without dblink; the payloads are in sql/constants.json
-- (notify). The functions that call models: 085_model_calls.sql.

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
-- schema dblink is installed in, which is spelled into them here
-- (../templates/request_dblink.sql): resolving it (and setting search_path) on
-- every call cost more than the rest of a cached call. Without dblink, _request
-- comes from ../templates/request_local.sql: it finds an answer the process
-- hosting the database stored (the embedded PGlite) or raises a clear error;
-- install dblink and run "superduper install" again to enable model calls from
-- SQL.
DO $install$
DECLARE
  v_dblink text := (SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                    WHERE e.extname = 'dblink');
BEGIN
  IF v_dblink IS NULL THEN
    PERFORM superduper._template_run('request_local', '{}');
  ELSE
    PERFORM superduper._template_run('request_dblink', jsonb_build_object('dblink', v_dblink));
  END IF;
END
$install$;

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

-- The embedded host's answer to a call that raised @{sqlstates.model_call}
-- (../templates/request_local.sql): an embedding goes to the query cache,
-- anything else (and any failure) to _answers, for the statement's next run.
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
