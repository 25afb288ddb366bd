-- Read your writes: superduper.wait_for() returns once every change committed
-- before the call has its output, or has failed for good, and lists the
-- failures. Exact and cheap:
--   * "before the call" is a time, p_since (default: the moment of the call).
--     A change is logged with its transaction's start time, and keeps it through
--     the queue and its retries, so every change committed before p_since is one
--     logged, queued or retried at or before p_since (so is a change of a
--     transaction still open at p_since; it is waited for if it commits in time);
--   * each look is three index probes (the log is small: sidecars drain it);
--   * it sleeps between looks, from 1 ms doubling to 50 ms, in a plpgsql loop:
--     in READ COMMITTED each statement of a VOLATILE function sees what has been
--     committed since the one before, so the loop sees the sidecars' writes.
-- A listener reading another's outputs (a chain) is waited for after the
-- listeners above it, each from the moment the one above was done.

-- Whether a listener version has anything left of the changes made up to
-- p_since: logged, queued (claimed or not, retrying or not), or a backfill.
-- plpgsql, not sql: its plans are kept between calls (an SQL function's are not,
-- which made every look cost a planning: 0.45 ms against 0.1 ms measured). No
-- SET clause: it runs inside wait_for, whose search_path is pinned.
CREATE OR REPLACE FUNCTION superduper._wait_done(p_listener integer, p_since timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
BEGIN
  RETURN NOT EXISTS (SELECT 1 FROM superduper._changes c WHERE c.listener_id = p_listener AND c.at <= p_since)
     AND NOT EXISTS (SELECT 1 FROM superduper._queue q WHERE q.listener_id = p_listener AND q.enqueued_at <= p_since)
     AND NOT EXISTS (SELECT 1 FROM superduper._backfill_cursor b WHERE b.listener_id = p_listener)
     AND NOT EXISTS (SELECT 1 FROM superduper._backfill b WHERE b.listener_id = p_listener);
END
$$;

-- What is left, in words, for the timeout error.
CREATE OR REPLACE FUNCTION superduper._wait_left(p_listener integer, p_since timestamptz)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text := (SELECT name FROM superduper._listeners WHERE id = p_listener);
  v_logged bigint;
  v_queued bigint;
  v_retrying bigint;
  v_error text;
  v_backfill bigint;
  v_parts text[] := '{}';
BEGIN
  SELECT count(*) INTO v_logged FROM superduper._changes c WHERE c.listener_id = p_listener AND c.at <= p_since;
  SELECT count(*), count(*) FILTER (WHERE q.attempts > 0 AND q.last_error IS NOT NULL),
         (array_agg(q.last_error ORDER BY q.enqueued_at) FILTER (WHERE q.last_error IS NOT NULL))[1]
  INTO v_queued, v_retrying, v_error
  FROM superduper._queue q WHERE q.listener_id = p_listener AND q.enqueued_at <= p_since;
  SELECT coalesce(sum(b.rows), 0) + coalesce((SELECT greatest(c.total - c.handed_out, 0) FROM superduper._backfill_cursor c
                                              WHERE c.listener_id = p_listener), 0)
  INTO v_backfill FROM superduper._backfill b WHERE b.listener_id = p_listener;
  IF v_logged + v_queued > 0 THEN
    v_parts := v_parts || format('%s change(s) to compute', v_logged + v_queued);
  END IF;
  IF v_retrying > 0 THEN
    v_parts := v_parts || format('%s of them retried after errors (last error: %s)', v_retrying, v_error);
  END IF;
  IF v_backfill > 0 OR superduper._backfilling(p_listener) THEN
    v_parts := v_parts || format('%s existing row(s) of its backfill', v_backfill);
  END IF;
  RETURN format('listener "%s" has %s', v_name, coalesce(array_to_string(v_parts, ', '), 'work in flight'));
END
$$;

-- What the sidecars are doing, for the timeout error's hint.
CREATE OR REPLACE FUNCTION superduper._sidecars_hint()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE
    WHEN count(*) = 0 THEN 'No sidecar is running: start one with "npx superduper start <uri>".'
    WHEN count(*) FILTER (WHERE now() - w.seen_at <= 3 * w.heartbeat) = 0 THEN
      format('%s sidecar(s) registered, none seen for %s s (reconnecting, or gone: see superduper.workers).',
             count(*), round(extract(epoch FROM now() - max(w.seen_at))))
    ELSE format('%s sidecar(s) answering; wait longer (p_timeout), or see superduper.status and superduper.workers.',
                count(*) FILTER (WHERE now() - w.seen_at <= 3 * w.heartbeat))
  END
  FROM superduper._workers w
$$;

-- The listener versions to wait for, upstream first: a listener and those its
-- chain reads from, or (p_listener NULL) every current listener.
CREATE OR REPLACE FUNCTION superduper._wait_order(p_listener text)
RETURNS integer[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids integer[];
BEGIN
  IF p_listener IS NULL THEN
    WITH RECURSIVE down(id, depth) AS (
      SELECT l.id, 0 FROM superduper._listeners l
      WHERE l.state = 'current'
        AND NOT EXISTS (SELECT 1 FROM superduper._listeners u
                        WHERE l.source_schema = 'superduper' AND l.source_table = u.output_table AND u.state = 'current')
      UNION
      SELECT d.id, down.depth + 1 FROM down
      JOIN superduper._listeners l ON l.id = down.id
      JOIN superduper._listeners d ON d.source_schema = 'superduper' AND d.source_table = l.output_table AND d.state = 'current'
      WHERE down.depth < 100
    )
    SELECT array_agg(id ORDER BY depth, id) INTO v_ids FROM (SELECT id, max(depth) AS depth FROM down GROUP BY id) AS x;
    RETURN coalesce(v_ids, '{}');
  END IF;
  -- Most listeners read a table of the user's, not another's outputs.
  SELECT ARRAY[l.id] INTO v_ids FROM superduper._listeners l
  WHERE l.name = p_listener AND l.state = 'current' AND l.source_schema <> 'superduper';
  IF v_ids IS NOT NULL THEN
    RETURN v_ids;
  END IF;
  WITH RECURSIVE up(id, depth) AS (
    SELECT l.id, 0 FROM superduper._listeners l WHERE l.name = p_listener AND l.state = 'current'
    UNION
    SELECT u.id, up.depth + 1 FROM up
    JOIN superduper._listeners d ON d.id = up.id
    JOIN superduper._listeners u ON d.source_schema = 'superduper' AND d.source_table = u.output_table AND u.state = 'current'
    WHERE up.depth < 100
  )
  SELECT array_agg(id ORDER BY depth DESC, id) INTO v_ids FROM (SELECT id, max(depth) AS depth FROM up GROUP BY id) AS x;
  IF v_ids IS NULL THEN
    RAISE EXCEPTION 'superduper.wait_for: no listener named %', quote_literal(p_listener)
      USING HINT = 'Listeners: ' || coalesce((SELECT string_agg(DISTINCT quote_literal(name), ', ') FROM superduper._listeners), '(none)');
  END IF;
  RETURN v_ids;
END
$$;

-- Waits until every change committed before p_since (default: now) to the
-- listener's table (or, with no listener, to any listener's) has its output or
-- has failed for good, and returns the failures among them: no rows means every
-- row has an output computed from its current value. Raises SQLSTATE @{sqlstates.wait_timeout} after
-- p_timeout, saying what is left and what the sidecars are doing.
--   SELECT * FROM superduper.wait_for('docs_embedding');
--   SELECT * FROM superduper.wait_for('docs_embedding', interval '5 minutes');
-- Needs READ COMMITTED (it must see the sidecars' commits), and must come after
-- the writes' COMMIT: a change not yet committed cannot be computed. The caller
-- must be allowed to read the listener's table (it returns row keys).
CREATE OR REPLACE FUNCTION superduper.wait_for(p_listener text DEFAULT NULL, p_timeout interval DEFAULT interval '30 seconds',
                                               p_since timestamptz DEFAULT NULL)
RETURNS TABLE (listener text, primary_key jsonb, error text, failed_at timestamptz)
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  -- On the embedded database the host runs the statement again after letting
  -- its sidecar work, carrying the first run's moment and deadline (see @{sqlstates.wait_rerun} below).
  v_resumed jsonb := nullif(current_setting('superduper.wait', true), '')::jsonb;
  v_since timestamptz := coalesce(p_since, (v_resumed ->> 'since')::timestamptz, clock_timestamp());
  v_deadline timestamptz := coalesce((v_resumed ->> 'deadline')::timestamptz, clock_timestamp() + p_timeout);
  v_ids integer[];
  v_stage_since timestamptz[] := '{}';
  v_id integer;
  v_i integer := 0;
  v_at timestamptz;
  v_nap float8;
  v_source regclass;
BEGIN
  IF v_resumed IS NOT NULL THEN
    PERFORM set_config('superduper.wait', '', false);  -- used once
  END IF;
  IF p_timeout IS NULL OR p_timeout < interval '0' THEN
    RAISE EXCEPTION 'superduper.wait_for: the timeout must be an interval of zero or more, not %', coalesce(p_timeout::text, 'NULL');
  END IF;
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'superduper.wait_for cannot wait in a % transaction: it would never see the sidecars'' outputs', upper(current_setting('transaction_isolation'))
      USING HINT = 'Call it outside the transaction, or in a READ COMMITTED one.';
  END IF;
  v_ids := superduper._wait_order(p_listener);
  FOREACH v_id IN ARRAY v_ids LOOP
    SELECT l.source INTO v_source FROM superduper._listeners l WHERE l.id = v_id;
    IF NOT has_table_privilege(session_user, v_source, 'SELECT') THEN
      RAISE EXCEPTION 'superduper.wait_for: permission denied for table % (listener "%")', v_source,
        (SELECT name FROM superduper._listeners WHERE id = v_id)
        USING ERRCODE = '42501', HINT = 'It returns row keys of the table: the caller must be allowed to read it.';
    END IF;
    IF pg_current_xact_id_if_assigned() IS NOT NULL
       AND EXISTS (SELECT 1 FROM superduper._changes c WHERE c.listener_id = v_id AND c.xmin = pg_current_xact_id_if_assigned()::xid) THEN
      RAISE EXCEPTION 'superduper.wait_for: this transaction changed table % and has not committed: no sidecar can see those changes yet', v_source
        USING HINT = 'COMMIT first, then wait.';
    END IF;
  END LOOP;

  v_at := v_since;
  FOREACH v_id IN ARRAY v_ids LOOP
    v_i := v_i + 1;
    v_nap := 0.001;
    WHILE NOT superduper._wait_done(v_id, v_at) LOOP
      IF clock_timestamp() >= v_deadline THEN
        RAISE EXCEPTION 'superduper.wait_for: timed out after %: %', p_timeout, superduper._wait_left(v_id, v_at)
          USING ERRCODE = '@{sqlstates.wait_timeout}', HINT = superduper._sidecars_hint();
      END IF;
      IF version() LIKE '%PGlite%' THEN
        -- The embedded database has one session, which its sidecar needs to do
        -- the work: sleeping here would stop it. The host runs the statement
        -- again after a moment (with the first run's moment and deadline).
        RAISE EXCEPTION 'superduper.wait_for: % has changes still to compute; on the embedded database the process hosting it waits and runs the statement again', superduper._wait_left(v_id, v_at)
          USING ERRCODE = '@{sqlstates.wait_rerun}',
                DETAIL = jsonb_build_object('since', v_since, 'deadline', v_deadline)::text,
                HINT = 'It cannot wait inside a transaction block, which holds the only session: call it outside one.';
      END IF;
      PERFORM pg_sleep(v_nap);
      v_nap := least(v_nap * 2, 0.05);
    END LOOP;
    v_stage_since := v_stage_since || v_at;
    -- Outputs written up to now may have made changes below in the chain.
    v_at := greatest(v_at, clock_timestamp());
  END LOOP;

  -- Usually there is no failure at all: then no join is planned and run.
  IF NOT EXISTS (SELECT 1 FROM superduper._failures f WHERE f.listener_id = ANY (v_ids)) THEN
    RETURN;
  END IF;
  RETURN QUERY
  SELECT l.name, f.pk, f.error, f.failed_at
  FROM unnest(v_ids, v_stage_since) AS s(id, since)
  JOIN superduper._failures f ON f.listener_id = s.id AND f.changed_at <= s.since
  JOIN superduper._listeners l ON l.id = s.id
  ORDER BY l.name, f.pk;
END
$$;
