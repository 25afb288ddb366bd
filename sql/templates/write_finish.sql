-- The end of both write functions (write.sql, one output per row, and
-- write_many.sql, one per element), inserted where they name write_finish:
-- outputs of rows found gone go, with their failures; outputs of rows that
-- failed for good are withdrawn; the claimed queue entries and the backfill
-- range are acknowledged; failures of values now computed are cleared.
-- p_stamps has one stamp per row of p_pk1.. in both.
  IF cardinality(p_gone) > 0 THEN
    DELETE FROM {{outputs}} AS t
    USING (SELECT g::jsonb AS pk FROM unnest(p_gone) AS g) AS c
    WHERE {{pk_eq_t_c}}
      AND NOT EXISTS (SELECT 1 FROM {{source}} AS src WHERE {{pk_eq_src_c}} AND {{filter}});
    IF v_failures THEN
      DELETE FROM superduper._failures AS f
      USING (SELECT g::jsonb AS pk FROM unnest(p_gone) AS g) AS c
      WHERE f.listener_id = {{listener_id}} AND f.pk = c.pk
        AND NOT EXISTS (SELECT 1 FROM {{source}} AS src WHERE {{pk_eq_src_c}} AND {{filter}});
    END IF;
  END IF;

  IF cardinality(p_withdraw) > 0 THEN
    WITH withdrawn AS (
      DELETE FROM {{outputs}} AS t
      USING (SELECT w.pk::jsonb AS pk, w.stamp FROM unnest(p_withdraw, p_withdraw_stamps) AS w(pk, stamp)) AS c
      WHERE {{pk_eq_t_c}} AND t._stamp < c.stamp
      RETURNING c.pk
    )
    UPDATE superduper._failures AS f SET withdrawn = true
    FROM withdrawn AS w
    WHERE f.listener_id = {{listener_id}} AND f.pk = w.pk;
  END IF;

  IF cardinality(p_ack_ids) > 0 THEN
    DELETE FROM superduper._queue AS q
    USING unnest(p_ack_pks, p_ack_ids) AS a(pk, id)
    WHERE q.listener_id = {{listener_id}} AND q.pk = a.pk::jsonb AND q.id = a.id;
  END IF;

  IF v_failures AND cardinality(p_pk1) > 0 THEN
    DELETE FROM superduper._failures AS f
    USING (SELECT {{pk_json_u}} AS pk, coalesce(u.stamp, 0) AS stamp
           FROM unnest({{pk_args}}, p_stamps) AS u({{pk_unnest_cols}}, stamp)) AS i
    WHERE f.listener_id = {{listener_id}} AND f.pk = i.pk AND f.stamp <= i.stamp;
  END IF;

  IF p_chunk IS NOT NULL THEN
    -- When this was the last range of a building version, the sidecar calls
    -- superduper._promote_ready() next, in a transaction of its own.
    DELETE FROM superduper._backfill AS b
    WHERE b.listener_id = {{listener_id}} AND b.chunk = p_chunk;
    -- The range is written: listeners following this backfill have its rows
    -- to read (none, for most listeners: then nothing to do).
    IF v_followers <> '' THEN
      PERFORM pg_catalog.set_config('superduper.backfill_followers', '', true);
      PERFORM superduper._backfill_wake_followers({{listener_id}}, v_outputs_written);
    END IF;
  END IF;

