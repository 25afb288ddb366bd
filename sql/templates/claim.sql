-- Leases up to p_limit queued changes of one listener and returns, for each
-- distinct row, its key (sd_pk, and p1.. as text), its queue entries, and the
-- values of its key columns as they are now (k1..), and for a listener whose
-- outputs are lists, a hash of them (sd_hash, see write_many.sql).
--
-- sd_stamp is the newest queue id of the row visible to the statement that read
-- the values: the write function keeps an output only if no output from a larger
-- stamp is already there, so an output computed from an older value never
-- overwrites one computed from a newer value.
CREATE FUNCTION {{fn_claim}}(p_worker text, p_limit integer, p_lease interval)
RETURNS TABLE (sd_pk text, sd_ids bigint[], sd_attempts integer, sd_stamp bigint, sd_live boolean{{pk_decl}}{{key_decl}}{{hash_decl}})
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Arrays of a thousand values make custom plans slow to build (measured: 50 ms
-- a call for the first five calls of each connection, then 11 ms generic).
SET plan_cache_mode = force_generic_plan
AS {{q}}
#variable_conflict use_column
DECLARE
  v_pks jsonb[];
  v_ids bigint[];
  v_attempts integer[];
BEGIN
  -- Before touching any table (see superduper._enter_listener).
  PERFORM superduper._enter_listener({{listener_id}}, {{code_version}});

  -- Changes still in the log become queue entries first (one drain at a time).
  PERFORM superduper._drain();

  WITH picked AS (
    SELECT q.pk, q.id FROM superduper._queue AS q
    WHERE q.listener_id = {{listener_id}}
      AND (q.leased_until IS NULL OR q.leased_until < now())
      AND (q.run_after IS NULL OR q.run_after <= now())
    ORDER BY q.listener_id, q.pk, q.id
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ), leased AS (
    UPDATE superduper._queue AS q
    SET leased_until = now() + p_lease, leased_by = p_worker, attempts = q.attempts + 1
    FROM picked
    WHERE q.listener_id = {{listener_id}} AND q.pk = picked.pk AND q.id = picked.id
    RETURNING q.pk, q.id, q.attempts
  )
  SELECT array_agg(pk), array_agg(id), array_agg(attempts) INTO v_pks, v_ids, v_attempts FROM leased;

  IF v_pks IS NULL THEN
    RETURN;
  END IF;

  RETURN QUERY
  WITH claimed AS (
    SELECT c.pk, array_agg(c.id ORDER BY c.id) AS ids, max(c.attempts) AS attempts
    FROM unnest(v_pks, v_ids, v_attempts) AS c(pk, id, attempts)
    GROUP BY c.pk
  )
  SELECT c.pk::text, c.ids, c.attempts,
         (SELECT max(q.id) FROM superduper._queue AS q
          WHERE q.listener_id = {{listener_id}} AND q.pk = c.pk),
         coalesce(s.sd_live, false){{pk_text_c}}{{key_from_s}}{{hash_from_s}}
  FROM claimed AS c
  LEFT JOIN LATERAL (
    SELECT {{filter}} AS sd_live{{key_select}}{{hash_select}}
    FROM {{source}} AS src
    WHERE {{pk_eq_src_c}}
  ) AS s ON true;
END
{{q}};
