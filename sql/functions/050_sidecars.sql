-- What sidecars call to come and go: register, heartbeat, hand back their
-- claims, stop, and sleep until there is work. Sidecars are stateless:
-- everything they know about their work, and everything other sidecars need to
-- know about them, is in the database. Their work itself: 055_sidecar_work.sql.

-- Signatures changed in migration 5 (state, layer version): the old ones go
-- first, since CREATE OR REPLACE cannot change a result type.
DROP FUNCTION IF EXISTS superduper._worker_register(text, text, integer, text[]);
DROP FUNCTION IF EXISTS superduper._worker_heartbeat(text, interval);

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
    -- Training runs they were fitting: taken over at the next claim.
    UPDATE superduper._training_runs SET lease_until = now() WHERE state = 'running' AND claimed_by = ANY (v_dead);
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
  PERFORM superduper._training_release(p_id);
  DELETE FROM superduper._workers WHERE id = p_id;
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
  -- A sidecar's state, for the status: not worth a wait for the disk.
  PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
  UPDATE superduper._workers
  SET sleeping = true, seen_at = now(), state = 'idle', state_since = CASE WHEN state = 'idle' THEN state_since ELSE now() END
  WHERE id = p_worker;
  RETURN pg_try_advisory_lock(@{locks.namespace}, @{locks.sleep});
END
$$;

-- Called by a sidecar when it wakes (on the same connection as _sleep_lock),
-- saying whether _sleep_lock took the lock. (It used to find that out from
-- pg_locks, whose snapshot of the whole lock table cost 0.46 ms a call.)
DROP FUNCTION IF EXISTS superduper._sleep_unlock(text);
CREATE OR REPLACE FUNCTION superduper._sleep_unlock(p_worker text, p_locked boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);  -- as in _sleep_lock
  IF p_locked THEN
    PERFORM pg_advisory_unlock(@{locks.namespace}, @{locks.sleep});
  END IF;
  UPDATE superduper._workers SET sleeping = false, seen_at = now(), state = 'working', state_since = now()
  WHERE id = p_worker AND sleeping;
END
$$;
