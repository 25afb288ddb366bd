-- What sidecars call. Sidecars are stateless: everything they know about their
-- work, and everything other sidecars need to know about them, is here.

-- Signatures changed in migration 5 (state, layer version, stamps): the old
-- ones go first, since CREATE OR REPLACE cannot change a result type.
DROP FUNCTION IF EXISTS superduper._worker_register(text, text, integer, text[]);
DROP FUNCTION IF EXISTS superduper._worker_heartbeat(text, interval);
DROP FUNCTION IF EXISTS superduper._fail(integer, text[], text[], text[], bigint[], boolean);

-- The layer's version, for a sidecar to compare with its own code: a layer
-- newer than the code ends the sidecar (it would misread what it finds), an
-- older one makes it wait for "superduper install".
CREATE OR REPLACE FUNCTION superduper._layer_version()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object(
    'code_version', (SELECT value FROM superduper._meta WHERE key = 'code_version'),
    'migration', (SELECT max(version) FROM superduper._migrations))
$$;

-- A sidecar announces itself (again, after it was presumed dead). Returns the
-- layer's version.
CREATE OR REPLACE FUNCTION superduper._worker_register(p_id text, p_hostname text, p_pid integer, p_functions text[],
                                                       p_heartbeat interval, p_code_version text)
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO superduper._workers (id, hostname, pid, functions, heartbeat, code_version, state)
  VALUES (p_id, p_hostname, p_pid, coalesce(p_functions, '{}'), p_heartbeat, p_code_version, 'starting')
  ON CONFLICT (id) DO UPDATE SET functions = excluded.functions, heartbeat = excluded.heartbeat, seen_at = now();
  SELECT superduper._layer_version();
$$;

-- Marks a sidecar alive with what it is doing (p_state; p_outage, once, after
-- it came through an outage: {"at": ..., "seconds": ..., "reason": ...}), and
-- releases the leases of sidecars not seen for p_dead_after (killed, or cut
-- off): their work is claimable at once instead of when the leases run out.
-- Nobody is presumed dead in the first p_dead_after after the server started:
-- after a restart every sidecar is late, through no fault of its own.
-- Returns {"released": <sidecars presumed dead>, "code_version": ..., "migration": ...}.
CREATE OR REPLACE FUNCTION superduper._worker_heartbeat(p_id text, p_dead_after interval, p_state text, p_outage jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_dead text[];
BEGIN
  UPDATE superduper._workers
  SET seen_at = now(),
      state_since = CASE WHEN state IS DISTINCT FROM p_state THEN now() ELSE state_since END,
      state = p_state,
      outages = outages + CASE WHEN p_outage IS NULL THEN 0 ELSE 1 END,
      last_outage_at = coalesce((p_outage ->> 'at')::timestamptz, last_outage_at),
      last_outage = coalesce(make_interval(secs => (p_outage ->> 'seconds')::float8), last_outage),
      last_outage_reason = coalesce(p_outage ->> 'reason', last_outage_reason)
  WHERE id = p_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper: sidecar % is not registered (it was presumed dead and removed)', p_id
      USING ERRCODE = '@{sqlstates.not_registered}';
  END IF;
  IF now() - pg_postmaster_start_time() > p_dead_after THEN
    WITH gone AS (
      DELETE FROM superduper._workers WHERE seen_at < now() - p_dead_after RETURNING id
    )
    SELECT array_agg(id) INTO v_dead FROM gone;
  END IF;
  IF v_dead IS NOT NULL THEN
    UPDATE superduper._queue SET leased_until = NULL, leased_by = NULL WHERE leased_by = ANY (v_dead);
    UPDATE superduper._backfill SET leased_until = NULL, leased_by = NULL WHERE leased_by = ANY (v_dead);
    UPDATE superduper._requests SET status = 'pending', claimed_by = NULL WHERE status = 'running' AND claimed_by = ANY (v_dead);
  END IF;
  RETURN jsonb_build_object('released', coalesce(cardinality(v_dead), 0)) || superduper._layer_version();
END
$$;

-- A sidecar whose batches failed because a connection was lost hands back what
-- they had claimed, as soon as it reaches the database again, instead of
-- leaving it leased until the leases run out. Whatever of it was written before
-- the connection went (a commit whose answer was lost) is no longer there to
-- hand back. Not counted as an attempt: the rows were not at fault.
CREATE OR REPLACE FUNCTION superduper._worker_release(p_id text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_queued integer;
  v_ranges integer;
BEGIN
  UPDATE superduper._queue
  SET leased_until = NULL, leased_by = NULL, attempts = greatest(attempts - 1, 0)
  WHERE leased_by = p_id AND leased_until >= now();
  GET DIAGNOSTICS v_queued = ROW_COUNT;
  UPDATE superduper._backfill
  SET leased_until = NULL, leased_by = NULL, attempts = greatest(attempts - 1, 0)
  WHERE leased_by = p_id AND leased_until >= now();
  GET DIAGNOSTICS v_ranges = ROW_COUNT;
  RETURN v_queued + v_ranges;
END
$$;

-- A sidecar that found no work calls this, on a connection it keeps while it
-- waits, before waiting for a NOTIFY. The session lock it takes is what makes
-- writers notify (see _wake). It is granted only when no writer is between its
-- trigger and its commit; the sidecar then drains and looks once more, and sees
-- every change committed so far. When it is not granted (a writer is mid-
-- transaction, or another sidecar sleeps holding it), the sidecar waits with a
-- timeout instead. It never makes a writer wait.
CREATE OR REPLACE FUNCTION superduper._sleep_lock(p_worker text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE superduper._workers
  SET sleeping = true, seen_at = now(), state = 'idle', state_since = CASE WHEN state = 'idle' THEN state_since ELSE now() END
  WHERE id = p_worker;
  RETURN pg_try_advisory_lock(@{locks.namespace}, @{locks.sleep});
END
$$;

-- Called by a sidecar when it wakes (on the same connection as _sleep_lock).
CREATE OR REPLACE FUNCTION superduper._sleep_unlock(p_worker text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pg_advisory_unlock(@{locks.namespace}, @{locks.sleep})
  FROM pg_locks
  WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = @{locks.namespace} AND objid = @{locks.sleep} AND granted;
  UPDATE superduper._workers SET sleeping = false, seen_at = now(), state = 'working', state_since = now()
  WHERE id = p_worker AND sleeping;
END
$$;

-- Moves the change log into the queue: one queue entry per row and listener,
-- with a new id (the version stamp, see superduper._change_id) and the oldest
-- change's time (for lag). One sidecar drains at a time; the others skip, and
-- the next claim drains again. Entries of listeners that no longer exist go.
CREATE OR REPLACE FUNCTION superduper._drain()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_moved bigint;
BEGIN
  IF NOT pg_try_advisory_xact_lock(@{locks.namespace}, @{locks.drain}) THEN
    RETURN 0;
  END IF;
  WITH moved AS (
    DELETE FROM superduper._changes RETURNING listener_id, pk, at
  )
  INSERT INTO superduper._queue (listener_id, pk, enqueued_at)
  SELECT m.listener_id, m.pk, min(m.at)
  FROM moved AS m
  WHERE EXISTS (SELECT 1 FROM superduper._listeners l WHERE l.id = m.listener_id AND NOT l.frozen)
  GROUP BY m.listener_id, m.pk;
  GET DIAGNOSTICS v_moved = ROW_COUNT;
  RETURN v_moved;
END
$$;

-- A sidecar shutting down hands back what it has claimed but not written. The
-- claim is not counted as an attempt.
CREATE OR REPLACE FUNCTION superduper._worker_stop(p_id text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE superduper._queue
  SET leased_until = NULL, leased_by = NULL, attempts = greatest(attempts - 1, 0)
  WHERE leased_by = p_id;
  UPDATE superduper._backfill
  SET leased_until = NULL, leased_by = NULL, attempts = greatest(attempts - 1, 0)
  WHERE leased_by = p_id;
  UPDATE superduper._requests SET status = 'pending', claimed_by = NULL WHERE status = 'running' AND claimed_by = p_id;
  DELETE FROM superduper._workers WHERE id = p_id;
END
$$;

-- The listeners a sidecar can work on: all those whose model it can run (a
-- function model runs only in the process that registered it), and whether
-- each has claimable work right now (after draining the change log).
CREATE OR REPLACE FUNCTION superduper._worker_listeners(p_functions text[])
RETURNS TABLE (id integer, name text, version integer, state text, model text, runtime text,
               model_hash text, model_config jsonb, model_artifact text, pk text[], keys text[], key_types text[],
               output_type text, output jsonb, settings jsonb, has_work boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM superduper._drain();
  RETURN QUERY
  SELECT l.id, l.name, l.version, l.state, l.model, m.runtime, m.spec_hash, m.config, m.artifact, l.pk, l.keys, l.key_types,
         l.output_type, m.output, l.settings,
         EXISTS (SELECT 1 FROM superduper._queue q
                 WHERE q.listener_id = l.id
                   AND (q.leased_until IS NULL OR q.leased_until < now())
                   AND (q.run_after IS NULL OR q.run_after <= now()))
         OR EXISTS (SELECT 1 FROM superduper._backfill_cursor c WHERE c.listener_id = l.id)
         OR EXISTS (SELECT 1 FROM superduper._backfill b
                    WHERE b.listener_id = l.id AND (b.leased_until IS NULL OR b.leased_until < now()))
  FROM superduper._listeners l
  JOIN superduper._models m ON m.name = l.model
  WHERE NOT l.frozen
    AND (m.runtime <> '@{runtimes.process_local}' OR m.name = ANY (coalesce(p_functions, '{}')))
  ORDER BY l.id;
END
$$;

-- Records failed rows. Each row's claimed queue entries collapse into one entry
-- that is retried after an exponential backoff, keeping the time of the change
-- (for lag and superduper.wait_for), or, once max_attempts is reached, the row
-- moves to superduper.failures and stops blocking anything. Backfill rows (no
-- p_ack_ids for them) count as their first attempt. Failures that no retry can
-- fix (a NULL key value) pass p_permanent and go straight to the failures.
--
-- p_stamps are the stamps the failed values were read under (see the claim
-- template). A failure of an older value never replaces the record of a newer
-- one. Returns the rows moved to the failures with their stamps: the write that
-- follows in the same transaction withdraws their outputs computed from
-- earlier values, so that no output passes for current.
CREATE OR REPLACE FUNCTION superduper._fail(p_listener integer, p_pks text[], p_errors text[], p_stamps bigint[],
                                            p_ack_pks text[], p_ack_ids bigint[],
                                            p_permanent boolean DEFAULT false)
RETURNS TABLE (pk text, stamp bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_settings jsonb;
  v_backfill_at timestamptz;
  v_max integer;
BEGIN
  PERFORM pg_advisory_xact_lock_shared(@{locks.listener_namespace}, p_listener);  -- see superduper._lock_listeners
  SELECT l.settings, l.backfill_at INTO v_settings, v_backfill_at FROM superduper._listeners l WHERE l.id = p_listener;
  IF NOT FOUND THEN
    RETURN;  -- removed while the batch ran
  END IF;
  v_max := (v_settings ->> 'max_attempts')::integer;
  RETURN QUERY
  WITH acked AS (
    DELETE FROM superduper._queue AS q
    USING unnest(p_ack_pks, p_ack_ids) AS a(pk, id)
    WHERE q.listener_id = p_listener AND q.pk = a.pk::jsonb AND q.id = a.id
    RETURNING q.pk, q.attempts, q.enqueued_at
  ), failed AS (
    SELECT f.pk::jsonb AS pk, f.error, coalesce(f.stamp, 0) AS stamp,
           CASE WHEN p_permanent THEN v_max
                ELSE greatest(1, coalesce((SELECT max(a.attempts) FROM acked a WHERE a.pk = f.pk::jsonb), 1)) END AS attempts,
           -- A backfill row changed before the listener was applied.
           coalesce((SELECT min(a.enqueued_at) FROM acked a WHERE a.pk = f.pk::jsonb), v_backfill_at, now()) AS changed_at
    FROM unnest(p_pks, p_errors, p_stamps) AS f(pk, error, stamp)
  ), retried AS (
    INSERT INTO superduper._queue (listener_id, pk, attempts, run_after, last_error, enqueued_at)
    SELECT p_listener, failed.pk, failed.attempts, now() + superduper._backoff(failed.attempts, v_settings), failed.error, failed.changed_at
    FROM failed WHERE failed.attempts < v_max
  ), recorded AS (
    INSERT INTO superduper._failures AS x (listener_id, pk, attempts, error, stamp, changed_at)
    SELECT p_listener, failed.pk, failed.attempts, failed.error, failed.stamp, failed.changed_at
    FROM failed WHERE failed.attempts >= v_max
    ON CONFLICT (listener_id, pk) DO UPDATE
      SET attempts = excluded.attempts, error = excluded.error, failed_at = now(),
          stamp = excluded.stamp, changed_at = excluded.changed_at, withdrawn = false
      WHERE x.stamp <= excluded.stamp
    RETURNING x.pk, x.stamp
  )
  SELECT recorded.pk::text, recorded.stamp FROM recorded;
END
$$;

-- Extends the leases of work a sidecar is still computing (slow models).
CREATE OR REPLACE FUNCTION superduper._extend_lease(p_worker text, p_listener integer, p_ack_pks text[],
                                                    p_ack_ids bigint[], p_chunk integer, p_lease interval)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(@{locks.listener_namespace}, p_listener);  -- see superduper._lock_listeners
  UPDATE superduper._queue AS q SET leased_until = now() + p_lease
  FROM unnest(p_ack_pks, p_ack_ids) AS a(pk, id)
  WHERE q.listener_id = p_listener AND q.pk = a.pk::jsonb AND q.id = a.id AND q.leased_by = p_worker;
  IF p_chunk IS NOT NULL THEN
    UPDATE superduper._backfill SET leased_until = now() + p_lease
    WHERE listener_id = p_listener AND chunk = p_chunk AND leased_by = p_worker;
  END IF;
END
$$;

-- Building versions whose backfill is done but were not promoted (their last
-- range was emptied by a TRUNCATE, say). Sidecars call this now and then.
CREATE OR REPLACE FUNCTION superduper._promote_ready()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id integer;
  v_count integer := 0;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM superduper._listeners l
                 WHERE l.state = 'building' AND NOT superduper._backfilling(l.id)) THEN
    RETURN 0;
  END IF;
  -- Same lock as apply/remove: promotion drops and renames tables.
  PERFORM pg_advisory_xact_lock(@{locks.namespace}, @{locks.apply});
  FOR v_id IN
    SELECT l.id FROM superduper._listeners l
    WHERE l.state = 'building' AND NOT superduper._backfilling(l.id)
  LOOP
    PERFORM superduper._backfill_finished(v_id);
    v_count := v_count + 1;
  END LOOP;
  RETURN v_count;
END
$$;

-- Whether a listener version still has existing rows to compute.
CREATE OR REPLACE FUNCTION superduper._backfilling(p_listener integer)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT EXISTS (SELECT 1 FROM superduper._backfill_cursor WHERE listener_id = p_listener)
      OR EXISTS (SELECT 1 FROM superduper._backfill WHERE listener_id = p_listener)
$$;
