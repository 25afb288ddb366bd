-- superduper._dblink() (opens this session's request connection once) and
-- superduper._request() (one round trip to a sidecar), rendered at install by
-- sql/functions/080_model_requests.sql with {{dblink}}, the schema dblink is
-- installed in: resolving it (and setting search_path) on every call cost more
-- than the rest of a cached call.
CREATE OR REPLACE FUNCTION superduper._dblink()
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS {{q}}
BEGIN
  IF NOT coalesce('superduper' = ANY ({{dblink}}.dblink_get_connections()), false) THEN
    BEGIN
      PERFORM {{dblink}}.dblink_connect('superduper', superduper._dblink_connstr());
      -- Sidecars announce each answer; waiting callers watch for theirs.
      PERFORM {{dblink}}.dblink_exec('superduper', 'LISTEN @{notify.answers.channel}');
      -- A request row lives for milliseconds and is worthless after a crash
      -- (the waiting statement dies too): no need to wait for its WAL flush.
      PERFORM {{dblink}}.dblink_exec('superduper', 'SET synchronous_commit = off');
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION 'superduper: could not open the dblink connection for model calls: %', SQLERRM
        USING HINT = 'Set superduper.dblink to a connection string for this database (ALTER DATABASE ... SET superduper.dblink = ''...''), '
                     || 'or create a foreign server superduper_loopback with a user mapping; roles that are not superusers need a password.';
    END;
  END IF;
  RETURN 'superduper';
END
{{q}};

-- The request goes in with a NOTIFY naming it, so a sidecar takes it by
-- primary key; the answer comes back in the payload of a NOTIFY on
-- superduper_answers ("<id>:done:<json>", "<id>:failed:<error>"), read from the
-- connection's socket by dblink_get_notify without a round trip. An answer too
-- long for a payload (8000 bytes) is announced as "<id>" and fetched from the
-- row. Meanwhile the request connection waits for the answer
-- (superduper._request_wait, below) in slices of 100 ms, so that this statement
-- can be cancelled between them: it LISTENs on superduper_answers, so each
-- answer's NOTIFY sets its latch and ends its sleep at once, where a poll from
-- this session would add pg_sleep's granularity (it rounds up to whole
-- milliseconds: 0.5 ms a call on average, measured 3.3 sleeps of 1.18 ms a call).
CREATE OR REPLACE FUNCTION superduper._request(p_model text, p_kind text, p_input jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS {{q}}
DECLARE
  v_conn text := superduper._dblink();
  v_insert text;
  v_id bigint;
  v_prefix text;
  v_note text;
  v_status text;
  v_result text;
  v_error text;
  v_answered boolean;
  v_timeout interval := coalesce(nullif(current_setting('superduper.request_timeout', true), '')::interval, interval '5 seconds');
  v_started timestamptz := clock_timestamp();
  v_next_poll timestamptz := clock_timestamp() + interval '50 milliseconds';
BEGIN
  -- The input travels as a quoted literal: data, never SQL. An embedding's
  -- NOTIFY carries the model version and the input too (when they fit), so
  -- that a sidecar that knows the model computes without reading the row.
  v_insert := format(
    'WITH r AS (INSERT INTO superduper._requests (model, kind, input) VALUES (%L, %L, %L::jsonb) RETURNING id, model, kind, input) '
    'SELECT r.id, pg_notify(''@{notify.work.channel}'', CASE WHEN r.kind = ''embed'' AND octet_length(r.input::text) < @{notify.work.embed_input_max} '
    'THEN ''@{notify.work.embed_prefix}'' || json_build_object(''id'', r.id, ''model'', r.model, ''hash'', m.spec_hash, ''input'', r.input) '
    'ELSE ''@{notify.work.request_prefix}'' || r.id END)::text '
    'FROM r LEFT JOIN superduper._models m ON m.name = r.model', p_model, p_kind, p_input);
  BEGIN
    SELECT t.id INTO v_id FROM {{dblink}}.dblink(v_conn, v_insert) AS t(id bigint, n text);
  EXCEPTION WHEN OTHERS THEN
    -- This session's connection back to the database was lost (a restart
    -- of the server, pg_terminate_backend): open it again, once.
    PERFORM {{dblink}}.dblink_disconnect(v_conn);
    v_conn := superduper._dblink();
    SELECT t.id INTO v_id FROM {{dblink}}.dblink(v_conn, v_insert) AS t(id bigint, n text);
  END;
  v_prefix := v_id || ':';
  LOOP
    -- Until the answer is in (or 100 ms have passed); the answer's NOTIFY is
    -- then on its way to this session with it, usually already here.
    SELECT t.answered INTO v_answered
    FROM {{dblink}}.dblink(v_conn, format('SELECT superduper._request_wait(%s, %L)', v_id, v_started)) AS t(answered boolean);
    SELECT n.extra INTO v_note FROM {{dblink}}.dblink_get_notify(v_conn) AS n
    WHERE n.notify_name = '@{notify.answers.channel}' AND (n.extra = v_id::text OR starts_with(n.extra, v_prefix))
    LIMIT 1;
    IF starts_with(v_note, v_prefix || '@{notify.answers.done}:') THEN
      RETURN substr(v_note, length(v_prefix || '@{notify.answers.done}:') + 1)::jsonb;
    ELSIF starts_with(v_note, v_prefix || '@{notify.answers.failed}:') THEN
      RAISE EXCEPTION 'superduper: model "%" failed: %', p_model, substr(v_note, length(v_prefix || '@{notify.answers.failed}:') + 1);
    END IF;
    IF v_note IS NOT NULL OR (v_answered AND clock_timestamp() >= v_next_poll) THEN
      -- A long answer, in its row (or the NOTIFY was lost: looked at every 50 ms).
      SELECT t.status, t.result, t.error INTO v_status, v_result, v_error
      FROM {{dblink}}.dblink(v_conn, format(
        'DELETE FROM superduper._requests WHERE id = %s AND status IN (''done'', ''failed'') RETURNING status, result::text, error', v_id))
        AS t(status text, result text, error text);
      IF v_status = 'done' THEN
        RETURN v_result::jsonb;
      ELSIF v_status = 'failed' THEN
        RAISE EXCEPTION 'superduper: model "%" failed: %', p_model, v_error;
      END IF;
      v_next_poll := clock_timestamp() + interval '50 milliseconds';
    END IF;
    IF clock_timestamp() > v_started + v_timeout THEN
      PERFORM {{dblink}}.dblink_exec(v_conn, format('DELETE FROM superduper._requests WHERE id = %s', v_id));
      RAISE EXCEPTION 'superduper: no sidecar answered within % (model "%")', v_timeout, p_model
        USING HINT = superduper._sidecars_hint() || ' A function model is answered only by the process that registered it. '
                     || 'The wait is set by superduper.request_timeout.';
    END IF;
    IF v_answered THEN
      -- Answered, and its NOTIFY not here yet: it is a moment behind.
      PERFORM pg_sleep(0.0001);
    END IF;
  END LOOP;
END
{{q}};

-- Run by the request connection (superduper._dblink) for the caller of
-- superduper._request: true once request p_id is answered (its row gone, or
-- holding a long answer), false after 100 ms without. Each sleep ends when an
-- answer's NOTIFY reaches this session (it LISTENs on superduper_answers), or
-- after 1 ms (5 ms once the call has waited a second), when the row is looked
-- at again.
CREATE OR REPLACE FUNCTION superduper._request_wait(p_id bigint, p_started timestamptz)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS {{q}}
DECLARE
  v_until timestamptz := clock_timestamp() + interval '100 milliseconds';
BEGIN
  LOOP
    IF NOT EXISTS (SELECT 1 FROM superduper._requests WHERE id = p_id AND status IN ('pending', 'running')) THEN
      RETURN true;
    END IF;
    IF clock_timestamp() >= v_until THEN
      RETURN false;
    END IF;
    PERFORM pg_sleep(CASE WHEN clock_timestamp() - p_started > interval '1 second' THEN 0.005 ELSE 0.0001 END);
  END LOOP;
END
{{q}};
