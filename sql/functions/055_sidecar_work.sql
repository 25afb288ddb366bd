-- What sidecars call to work on listeners (besides each listener version's own
-- claim, claim_chunk and write functions, ../templates/): the log drained into
-- the queue, the listeners to work on, failures recorded and retried, leases
-- extended, finished versions promoted.

-- Its signature changed in migration 5 (stamps): the old one goes first, since
-- CREATE OR REPLACE cannot change a result type.
DROP FUNCTION IF EXISTS superduper._fail(integer, text[], text[], text[], bigint[], boolean);

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
         -- A cursor waiting for its upstream's backfill has none (035_backfill_follow.sql).
         OR EXISTS (SELECT 1 FROM superduper._backfill_cursor c WHERE c.listener_id = l.id AND NOT superduper._backfill_waits(l.id))
         OR EXISTS (SELECT 1 FROM superduper._backfill b
                    WHERE b.listener_id = l.id AND (b.leased_until IS NULL OR b.leased_until < now()))
  FROM superduper._listeners l
  JOIN superduper._models m ON m.name = l.model
  WHERE NOT l.frozen
    AND (m.runtime <> '@{runtimes.process_local}' OR m.name = ANY (coalesce(p_functions, '{}')))
    -- A trained model's listeners wait for its first deployed run.
    AND (m.runtime <> 'trained' OR m.artifact IS NOT NULL)
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

-- Waits for the writes of a listener's outputs in flight (each holds the
-- listener's writes lock, shared, to its commit; see the write template). A
-- sidecar calls it, in a transaction of its own, before the write that removes
-- the outputs of rows it found gone (deleted, or out of the filter).
--
-- Why: a write keeps an output only if its row is still there, checked in the
-- statement that inserts it; a row deleted after that statement began, but
-- before the write commits, is logged (the delete and update triggers), found
-- gone by another sidecar, and its output removed, by a DELETE that cannot see
-- the output not yet committed: left behind for a row that no longer exists.
-- Waiting here first, that DELETE sees every output whose row was still there
-- for a write that began before the row went; a write that begins later sees
-- it gone. The lock is the only one its transaction takes (it can be in no
-- deadlock), and goes at once at its commit (writes wait for it only briefly).
CREATE OR REPLACE FUNCTION superduper._await_writes(p_listener integer)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_advisory_xact_lock(@{locks.writes_namespace}, p_listener);
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
