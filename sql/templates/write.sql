-- Writes a batch of outputs and acknowledges the work it came from, in one
-- transaction:
--   * outputs are kept only if the source row still exists and passes the
--     filter, never over an output from a newer (larger) stamp, and never for a
--     value older than one that failed for good (a failure's stamp);
--   * outputs of rows that are gone (p_gone, or deleted since they were read)
--     are removed, with their failures;
--   * outputs of rows whose current value failed for good (p_withdraw, from
--     superduper._fail in the same transaction) are removed if they were
--     computed from an earlier value: no output passes for current;
--   * the claimed queue entries (p_ack_pks, p_ack_ids) and the backfill range
--     (p_chunk) are deleted; a failure recorded for a value now computed (or an
--     older one) is cleared.
-- The listener's writes lock, shared, is held to the commit: a sidecar about
-- to remove outputs of rows found gone waits for this write first (see
-- superduper._await_writes).
-- Keys arrive as one text array per primary key column (p_pk1, ...).
CREATE FUNCTION {{fn_write}}(
  {{pk_params}}, p_outputs {{output_type}}[], p_stamps bigint[],
  p_gone text[], p_ack_pks text[], p_ack_ids bigint[], p_chunk integer,
  p_withdraw text[], p_withdraw_stamps bigint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS {{q}}
#variable_conflict use_column
DECLARE
  v_written integer := 0;
  v_outputs_written bigint;  -- for write_finish: outputs rows this write made
  v_followers text := '';   -- for write_finish: the listeners following this backfill (',12,15,')
  v_inserted boolean := false;
  v_failures boolean;
BEGIN
  -- Before touching any table (see superduper._enter_listener).
  PERFORM superduper._enter_listener({{listener_id}}, {{code_version}});
  -- Before the statements that check the rows are live take their snapshots.
  PERFORM pg_advisory_xact_lock_shared(@{locks.writes_namespace}, {{listener_id}});
  -- A backfill range: listeners chained on these outputs whose own backfill
  -- will read them let its rows pass their triggers (035_backfill_follow.sql).
  IF p_chunk IS NOT NULL THEN
    v_followers := superduper._backfill_followers({{listener_id}});
    IF v_followers <> '' THEN
      PERFORM pg_catalog.set_config('superduper.backfill_followers', v_followers, true);
    END IF;
  END IF;

  -- Usually none: then no write looks a row's failure up.
  v_failures := EXISTS (SELECT 1 FROM superduper._failures WHERE listener_id = {{listener_id}});

  -- Backfill rows almost never have an output yet (only when the range is
  -- redone after a crash, or the row changed and was computed from the queue
  -- meanwhile), and a plain INSERT costs half an upsert (measured: 2.6 ms against
  -- 5 ms for 1000 rows). If any row does have one, the INSERT fails as a whole
  -- and the guarded upsert below runs instead.
  IF p_chunk IS NOT NULL THEN
    BEGIN
      INSERT INTO {{outputs}} ({{pk_cols}}, output, _stamp)
      SELECT {{pk_values_u}}, u.output, coalesce(u.stamp, 0)
      FROM unnest({{pk_args}}, p_outputs, p_stamps) AS u({{pk_unnest_cols}}, output, stamp)
      WHERE EXISTS (SELECT 1 FROM {{source}} AS src WHERE {{pk_eq_src_u}} AND {{filter}})
        AND NOT (v_failures AND EXISTS (SELECT 1 FROM superduper._failures AS f
                                        WHERE f.listener_id = {{listener_id}} AND f.pk = {{pk_json_u}}
                                          AND f.stamp > coalesce(u.stamp, 0)));
      GET DIAGNOSTICS v_written = ROW_COUNT;
      v_inserted := true;
    EXCEPTION WHEN unique_violation THEN
      v_inserted := false;
    END;
  END IF;

  IF NOT v_inserted THEN
    -- Liveness is checked in the statement that writes: a row deleted (or
    -- filtered out) after it was claimed gets no output.
    INSERT INTO {{outputs}} AS t ({{pk_cols}}, output, _stamp)
    SELECT {{pk_values_u}}, u.output, coalesce(u.stamp, 0)
    FROM unnest({{pk_args}}, p_outputs, p_stamps) AS u({{pk_unnest_cols}}, output, stamp)
    WHERE EXISTS (SELECT 1 FROM {{source}} AS src WHERE {{pk_eq_src_u}} AND {{filter}})
      AND NOT (v_failures AND EXISTS (SELECT 1 FROM superduper._failures AS f
                                      WHERE f.listener_id = {{listener_id}} AND f.pk = {{pk_json_u}}
                                        AND f.stamp > coalesce(u.stamp, 0)))
    ON CONFLICT ({{pk_cols}}) DO UPDATE
      SET output = excluded.output, _stamp = excluded._stamp, _computed_at = now()
      WHERE t._stamp < excluded._stamp;
    GET DIAGNOSTICS v_written = ROW_COUNT;
  END IF;

  -- Fewer rows written than given: some are gone, or were computed meanwhile
  -- from a newer value. Gone ones lose any output they had.
  IF v_written < cardinality(p_outputs) THEN
    DELETE FROM {{outputs}} AS t
    USING unnest({{pk_args}}) AS u({{pk_unnest_cols}})
    WHERE {{pk_eq_t_u}}
      AND NOT EXISTS (SELECT 1 FROM {{source}} AS src WHERE {{pk_eq_src_u}} AND {{filter}});
  END IF;

  v_outputs_written := v_written;
{{write_finish}}
  RETURN v_written;
END
{{q}};
