-- Leases one range of the source's primary key for the backfill and returns the
-- rows in it that pass the filter, in key order (or, if there are none, one row
-- with only sd_chunk set). See claim.sql for sd_stamp.
CREATE FUNCTION {{fn_claim_chunk}}(p_worker text, p_lease interval)
RETURNS TABLE (sd_chunk integer, sd_pk text, sd_stamp bigint{{key_decl}})
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS {{q}}
#variable_conflict use_column
DECLARE
  v_chunk integer;
  v_lo jsonb;
  v_hi jsonb;
BEGIN
  SELECT b.chunk, b.lo, b.hi INTO v_chunk, v_lo, v_hi
  FROM superduper._backfill AS b
  WHERE b.listener_id = {{listener_id}}
    AND (b.leased_until IS NULL OR b.leased_until < now())
  ORDER BY b.listener_id, b.chunk
  LIMIT 1
  FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN;
  END IF;

  UPDATE superduper._backfill AS b
  SET leased_until = now() + p_lease, leased_by = p_worker, attempts = b.attempts + 1
  WHERE b.listener_id = {{listener_id}} AND b.chunk = v_chunk;

  -- Bounds are the first and last primary keys of the range when the backfill
  -- was planned; rows inserted since then reached the queue through the triggers.
  RETURN QUERY
  SELECT v_chunk, {{pk_json_src}}::text,
         (SELECT max(q.id) FROM superduper._queue AS q
          WHERE q.listener_id = {{listener_id}} AND q.pk = {{pk_json_src}}){{key_select}}
  FROM {{source}} AS src
  WHERE {{pk_row_src}} >= {{pk_row_lo}}
    AND {{pk_row_src}} <= {{pk_row_hi}}
    AND {{filter}}
  ORDER BY {{pk_order_src}};
  IF NOT FOUND THEN
    -- Every row of the range is gone: still say which range was claimed, so the
    -- sidecar can mark it done.
    sd_chunk := v_chunk;
    RETURN NEXT;
  END IF;
END
{{q}};
