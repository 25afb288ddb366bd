-- Leases a range of the source's primary key for the backfill and returns the
-- rows in it that pass the filter, in key order: key as text (p1..), key column
-- values (k1..). See claim.sql for sd_stamp and sd_hash.
--
-- A range some sidecar claimed and never finished (it stopped, or its lease ran
-- out) is handed out again first; otherwise the next p_chunk_size keys from the
-- cursor become a new range. Returns no rows when the backfill is done, and one row with only
-- sd_chunk set when the range has no rows left.
CREATE FUNCTION {{fn_claim_chunk}}(p_worker text, p_lease interval, p_chunk_size integer)
RETURNS TABLE (sd_chunk integer, sd_stamp bigint{{pk_decl}}{{key_decl}}{{hash_decl}})
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS {{q}}
#variable_conflict use_column
DECLARE
  v_chunk integer;
  v_lo jsonb;
  v_hi jsonb;
  v_next jsonb;
  v_rows bigint;
  v_upstream integer;
  v_low_water jsonb;
  v_cap jsonb;
BEGIN
  -- Before touching any table (see superduper._enter_listener).
  PERFORM superduper._enter_listener({{listener_id}}, {{code_version}});

  SELECT b.chunk, b.lo, b.hi INTO v_chunk, v_lo, v_hi
  FROM superduper._backfill AS b
  WHERE b.listener_id = {{listener_id}} AND (b.leased_until IS NULL OR b.leased_until < now())
  ORDER BY b.listener_id, b.chunk
  LIMIT 1
  FOR UPDATE SKIP LOCKED;

  IF FOUND THEN
    UPDATE superduper._backfill AS b
    SET leased_until = now() + p_lease, leased_by = p_worker, attempts = b.attempts + 1, computed = 0
    WHERE b.listener_id = {{listener_id}} AND b.chunk = v_chunk;
  ELSE
    -- Sidecars claiming for this listener queue on the cursor's row lock for the
    -- moment it takes to find the range: two index scans of p_chunk_size keys.
    SELECT c.next, c.chunks + 1 INTO v_lo, v_chunk
    FROM superduper._backfill_cursor AS c
    WHERE c.listener_id = {{listener_id}}
    FOR UPDATE;
    IF NOT FOUND THEN
      RETURN;
    END IF;

    -- Reading another listener's outputs while that listener's backfill runs:
    -- only the keys below its low water (read after the cursor's lock, so
    -- after any range written meanwhile; see 035_backfill_follow.sql).
    IF {{follows}} THEN
      v_upstream := superduper._listener_upstream({{listener_id}});
      v_low_water := superduper._backfill_low_water(v_upstream);
      v_cap := v_low_water || coalesce((SELECT pg_catalog.jsonb_agg('-1'::text)
                                        FROM pg_catalog.generate_series(pg_catalog.jsonb_array_length(v_low_water) + 1, {{pk_count}})), '[]');
    END IF;

    SELECT {{pk_json_src}}, src.sd_rows INTO v_hi, v_rows
    FROM (SELECT first.*, count(*) OVER () AS sd_rows
          FROM (SELECT {{pk_order_src}} FROM {{source}} AS src
                WHERE {{pk_row_src}} >= {{pk_row_lo}} AND (v_cap IS NULL OR {{pk_row_src}} < {{pk_row_cap}}) AND {{filter}}
                ORDER BY {{pk_order_src}}
                LIMIT p_chunk_size) AS first) AS src
    ORDER BY {{pk_order_src_desc}}
    LIMIT 1;
    IF v_hi IS NULL AND v_cap IS NOT NULL THEN
      -- Everything below the low water is handed out: wait until it moves.
      UPDATE superduper._backfill_cursor SET waits_for = v_upstream, waits_below = v_low_water
      WHERE listener_id = {{listener_id}};
      RETURN;
    ELSIF v_hi IS NULL THEN
      -- Nothing left from the cursor on (rows deleted since the apply).
      DELETE FROM superduper._backfill_cursor WHERE listener_id = {{listener_id}};
      RETURN;
    END IF;

    SELECT {{pk_json_src}} INTO v_next
    FROM {{source}} AS src
    WHERE {{pk_row_src}} > {{pk_row_hi}}
    ORDER BY {{pk_order_src}}
    LIMIT 1;
    IF v_cap IS NOT NULL AND (v_next IS NULL OR {{pk_row_next}} > {{pk_row_cap}}) THEN
      -- Rows the upstream's backfill writes from its low water on are this
      -- backfill's to read: the cursor goes no further.
      v_next := v_cap;
    END IF;
    IF v_next IS NULL THEN
      -- Rows inserted after the apply reach the queue through the triggers.
      DELETE FROM superduper._backfill_cursor WHERE listener_id = {{listener_id}};
    ELSE
      -- A follower's total grows with its upstream's outputs (see status).
      UPDATE superduper._backfill_cursor AS c
      SET next = v_next, chunks = v_chunk, handed_out = c.handed_out + v_rows,
          total = greatest(c.total, c.handed_out + v_rows), waits_for = NULL, waits_below = NULL
      WHERE c.listener_id = {{listener_id}};
    END IF;
    INSERT INTO superduper._backfill (listener_id, chunk, lo, hi, rows, attempts, leased_until, leased_by)
    VALUES ({{listener_id}}, v_chunk, v_lo, v_hi, v_rows, 1, now() + p_lease, p_worker);
  END IF;

  -- The stamp lookup runs only if the listener has queued changes at all (the
  -- usual backfill has none), decided in the same snapshot as the read.
  RETURN QUERY
  SELECT v_chunk,
         CASE WHEN queued.any THEN
           (SELECT max(q.id) FROM superduper._queue AS q
            WHERE q.listener_id = {{listener_id}} AND q.pk = {{pk_json_src}})
         END{{pk_text_src}}{{key_select}}{{hash_select}}
  FROM {{source}} AS src,
       (SELECT EXISTS (SELECT 1 FROM superduper._queue AS q WHERE q.listener_id = {{listener_id}}) AS any) AS queued
  WHERE {{pk_row_src}} >= {{pk_row_lo}}
    AND {{pk_row_src}} <= {{pk_row_hi}}
    AND {{filter}}
  ORDER BY {{pk_order_src}};
  IF NOT FOUND THEN
    sd_chunk := v_chunk;
    RETURN NEXT;
  END IF;
END
{{q}};
