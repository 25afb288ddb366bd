-- A listener chained on another listener's outputs (chunks → their embeddings)
-- follows that listener's backfill. Left to its triggers, every row the
-- upstream's backfill writes would be a change: logged, drained into the queue,
-- claimed by key and acknowledged one by one (measured: 26,546 chunks took
-- 2.4 s that way, against 1.24 s read as a backfill; docs/benchmarks.md). So
-- while the upstream has a backfill, the downstream's own backfill reads the
-- upstream's outputs in ranges, but only below the upstream's lowest range not
-- yet written (the rows there are final, for the backfill's part), and its
-- triggers let the rows the upstream's backfill writes pass: its backfill will
-- read them. Rows the upstream writes otherwise (a change to a document during
-- the backfill, a retried failure) still go through the triggers. Early
-- outputs are kept: the downstream starts on the first range the upstream
-- writes, not after the whole backfill.
--
-- The pieces: the upstream's backfill write names, for its transaction, the
-- listeners that will read its rows (superduper.backfill_followers, set by
-- the write templates); their insert and update triggers check it (rendered
-- only for a listener whose source is a listener's outputs: a table's writers
-- pay nothing); their claim_chunk caps its ranges at the low water below; a
-- cursor with nothing left below it waits (_backfill_cursor.waits_for and
-- waits_below: superduper._worker_listeners sees no work for it until the low
-- water moves), and the upstream's next range written wakes sidecars.

-- The listener whose outputs p_listener reads, if any: the one that writes its
-- source table (a current version's stable table, or a building version's own).
CREATE OR REPLACE FUNCTION superduper._listener_upstream(p_listener integer)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT u.id FROM superduper._listeners AS l
  JOIN superduper._listeners AS u ON l.source_schema = 'superduper' AND u.output_table = l.source_table
  WHERE l.id = p_listener AND NOT u.frozen
  ORDER BY u.id DESC
  LIMIT 1
$$;

-- The upstream's backfill low water: the first key (as the queue writes keys,
-- a JSON array of texts) of its lowest range not yet written, or of what its
-- cursor has not handed out; NULL when it has no backfill (or is frozen: it
-- writes nothing more). Every row below it that the backfill will write is
-- written. Ranges are handed out in key order, so the lowest chunk number is
-- the lowest range.
CREATE OR REPLACE FUNCTION superduper._backfill_low_water(p_upstream integer)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(
    (SELECT b.lo FROM superduper._backfill AS b WHERE b.listener_id = p_upstream ORDER BY b.listener_id, b.chunk LIMIT 1),
    (SELECT c.next FROM superduper._backfill_cursor AS c WHERE c.listener_id = p_upstream))
  WHERE EXISTS (SELECT 1 FROM superduper._listeners AS u WHERE u.id = p_upstream AND NOT u.frozen)
$$;

-- The listeners that will read, by their own backfill, what p_upstream's
-- backfill writes now: those chained on its outputs whose backfill is not done
-- (their cursor is at or below the low water, see the claim_chunk template).
-- As the setting's value: ',12,15,' (empty when none).
CREATE OR REPLACE FUNCTION superduper._backfill_followers(p_upstream integer)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(',' || string_agg(d.id::text, ',') || ',', '')
  FROM superduper._listener_dependents(p_upstream) AS d
  WHERE NOT d.frozen
    AND EXISTS (SELECT 1 FROM superduper._backfill_cursor AS c WHERE c.listener_id = d.id)
$$;

-- After p_upstream wrote a backfill range of p_rows outputs: its followers
-- have them to read (their cursors' totals grow by as many, for status and
-- progress), and sidecars are told, as for a change. Whether a follower has
-- work is decided from the low water (superduper._backfill_waits), so a wake-up
-- that comes before a follower's wait is recorded is not lost.
CREATE OR REPLACE FUNCTION superduper._backfill_wake_followers(p_upstream integer, p_rows bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id integer;
BEGIN
  FOR v_id IN
    UPDATE superduper._backfill_cursor AS c SET total = c.total + p_rows
    WHERE c.listener_id IN (SELECT d.id FROM superduper._listener_dependents(p_upstream) AS d)
    RETURNING c.listener_id
  LOOP
    PERFORM pg_notify('@{notify.work.channel}', v_id::text);
  END LOOP;
END
$$;

-- Whether a backfill cursor waits for its upstream: it found nothing below the
-- low water, and the low water has not moved since.
CREATE OR REPLACE FUNCTION superduper._backfill_waits(p_listener integer)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce((SELECT c.waits_for IS NOT NULL
                          AND superduper._backfill_low_water(c.waits_for) IS NOT DISTINCT FROM c.waits_below
                   FROM superduper._backfill_cursor AS c WHERE c.listener_id = p_listener), false)
$$;
