-- Views for people: what is registered, how far behind each listener is, what
-- failed. These are the supported way to inspect superduper from SQL.

CREATE OR REPLACE FUNCTION superduper.outputs(p_listener text)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_table text;
BEGIN
  SELECT output_table INTO v_table FROM superduper._listeners WHERE name = p_listener AND state = 'current';
  IF v_table IS NULL THEN
    RAISE EXCEPTION 'superduper.outputs: no listener named %', coalesce(quote_literal(p_listener), 'NULL');
  END IF;
  RETURN superduper._qualify('superduper', v_table)::regclass;
END
$$;

-- Per listener version: pending (queued or in an unclaimed backfill range), in
-- flight (claimed by a sidecar), failed, withdrawn (failed rows whose output,
-- computed from an earlier value, was removed: see superduper.failures), done
-- (rows in the outputs table), and lag: the age of the oldest change not yet
-- computed; computing: rows of the claimed backfill ranges a sidecar has
-- computed and not written yet (a range is written at once when it is complete).
-- p_count_done = false skips counting each outputs table (done is NULL then):
-- cheap enough to poll while waiting for listeners to catch up.
CREATE OR REPLACE FUNCTION superduper._status(p_count_done boolean DEFAULT true)
RETURNS TABLE (listener text, version integer, state text, model text, source text, outputs text,
               pending bigint, in_flight bigint, failed bigint, done bigint, lag interval,
               backfill_total bigint, backfill_remaining bigint, note text, withdrawn bigint, computing bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  l superduper._listeners;
  v_q_pending bigint;
  v_q_flight bigint;
  v_q_oldest timestamptz;
  v_b_pending bigint;
  v_b_flight bigint;
  v_b_computed bigint;
  v_logged bigint;
  v_logged_oldest timestamptz;
BEGIN
  FOR l IN SELECT * FROM superduper._listeners ORDER BY name, version LOOP
    SELECT count(*) FILTER (WHERE q.leased_until IS NULL OR q.leased_until < now()),
           count(*) FILTER (WHERE q.leased_until >= now()),
           min(q.enqueued_at)
    INTO v_q_pending, v_q_flight, v_q_oldest
    FROM superduper._queue q WHERE q.listener_id = l.id;
    -- Changes still in the log (not yet drained into the queue) are pending too.
    SELECT count(*), min(c.at) INTO v_logged, v_logged_oldest
    FROM superduper._changes c WHERE c.listener_id = l.id;
    v_q_pending := v_q_pending + v_logged;
    v_q_oldest := least(v_q_oldest, v_logged_oldest);
    SELECT coalesce(sum(b.rows) FILTER (WHERE b.leased_until IS NULL OR b.leased_until < now()), 0),
           coalesce(sum(b.rows) FILTER (WHERE b.leased_until >= now()), 0),
           coalesce(sum(b.computed) FILTER (WHERE b.leased_until >= now()), 0)
    INTO v_b_pending, v_b_flight, v_b_computed
    FROM superduper._backfill b WHERE b.listener_id = l.id;
    v_b_pending := v_b_pending + coalesce(
      (SELECT greatest(c.total - c.handed_out, 0) FROM superduper._backfill_cursor c WHERE c.listener_id = l.id), 0);

    listener := l.name;
    version := l.version;
    state := CASE WHEN l.frozen THEN 'frozen' ELSE l.state END;
    model := l.model;
    source := superduper._qualify(l.source_schema, l.source_table);
    outputs := superduper._qualify('superduper', l.output_table);
    pending := v_q_pending + v_b_pending;
    in_flight := v_q_flight + v_b_flight;
    SELECT count(*), count(*) FILTER (WHERE f.withdrawn) INTO failed, withdrawn
    FROM superduper._failures f WHERE f.listener_id = l.id;
    done := NULL;
    IF p_count_done THEN
      BEGIN
        EXECUTE 'SELECT count(*) FROM ' || outputs INTO done;
      EXCEPTION WHEN undefined_table THEN
        done := NULL;
      END;
    END IF;
    lag := CASE
      WHEN v_b_pending + v_b_flight > 0 OR superduper._backfilling(l.id) THEN now() - least(l.backfill_at, coalesce(v_q_oldest, 'infinity'))
      WHEN v_q_oldest IS NOT NULL THEN now() - v_q_oldest
      ELSE interval '0' END;
    backfill_total := l.backfill_total;
    backfill_remaining := v_b_pending + v_b_flight;
    note := l.error;
    computing := v_b_computed;
    RETURN NEXT;
  END LOOP;
END
$$;

CREATE OR REPLACE VIEW superduper.status AS SELECT * FROM superduper._status();

-- A sidecar's word on a backfill range it is computing: p_computed of its rows
-- are done (not yet written). Only the range's holder counts.
CREATE OR REPLACE FUNCTION superduper._backfill_progress(p_listener integer, p_chunk integer, p_worker text, p_computed bigint)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE superduper._backfill SET computed = p_computed
  WHERE listener_id = p_listener AND chunk = p_chunk AND leased_by = p_worker
$$;

CREATE OR REPLACE VIEW superduper.listeners AS
SELECT l.name, l.version, CASE WHEN l.frozen THEN 'frozen' ELSE l.state END AS state, l.model,
       superduper._qualify(l.source_schema, l.source_table) AS source,
       l.keys, l.pk AS primary_key, l.filter,
       superduper._qualify('superduper', l.output_table) AS outputs, l.output_type,
       l.settings, l.created_at, l.updated_at, l.spec_version
FROM superduper._listeners l;

CREATE OR REPLACE VIEW superduper.models AS
SELECT m.name, m.runtime, m.output, m.config, m.artifact,
       (SELECT length(a.bytes) FROM superduper._artifacts a WHERE a.sha256 = m.artifact) AS artifact_bytes,
       m.version, m.created_at, m.updated_at, m.spec_version
FROM superduper._models m;

-- Rows whose current value failed for good. withdrawn: the row had an output
-- computed from an earlier value, which was removed when this value failed, so
-- that no output passes for current (the row has no output until it computes;
-- superduper.retry() or a change to the row queues it again). changed_at: when
-- the failed change was made (what superduper.wait_for compares).
CREATE OR REPLACE VIEW superduper.failures AS
SELECT l.name AS listener, l.version, f.pk AS primary_key, f.attempts, f.error,
       f.first_failed_at, f.failed_at, f.withdrawn, f.changed_at
FROM superduper._failures f JOIN superduper._listeners l ON l.id = f.listener_id;

-- Sidecars. state: what the sidecar last said it was doing (starting, working,
-- idle, waiting for install), or 'not answering' when it has missed three
-- heartbeats: it is cut off from the database (and reconnecting by itself) or
-- gone; its claims are released once it has been silent for the dead-after
-- time of the other sidecars (15 s by default). outages: database outages it
-- came through since it started, the last one's start, length and reason.
CREATE OR REPLACE VIEW superduper.workers AS
SELECT w.id, w.hostname, w.pid, w.functions, w.sleeping, w.started_at, w.seen_at,
       CASE WHEN now() - w.seen_at > 3 * w.heartbeat THEN 'not answering' ELSE w.state END AS state,
       CASE WHEN now() - w.seen_at > 3 * w.heartbeat THEN w.seen_at ELSE w.state_since END AS state_since,
       w.heartbeat, w.code_version, w.outages, w.last_outage_at, w.last_outage, w.last_outage_reason
FROM superduper._workers w;

CREATE OR REPLACE VIEW superduper.vector_indexes AS
SELECT v.name, v.listener, v.query_model, v.measure, (v.options ->> 'm')::integer AS m,
       (v.options ->> 'ef_construction')::integer AS ef_construction, (v.options ->> 'ef_search')::integer AS ef_search,
       superduper._qualify('superduper', l.output_table) AS outputs, v.created_at, v.updated_at, v.spec_version,
       v.version, v.state
FROM superduper._vector_indexes v
LEFT JOIN superduper._listeners l ON l.name = v.listener AND l.state = 'current';
