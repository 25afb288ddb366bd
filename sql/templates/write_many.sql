-- The write function of a listener whose model returns a list per row (its
-- output declares "flatten": true): each element is an output row keyed by the
-- source's primary key and its _position, with its lineage (_start, _end and
-- _headings, for chunks). For each row (p_pk1.., p_stamps, p_hashes, p_counts)
-- its elements (p_rows: the row's ordinal in p_pk1..; p_positions, p_outputs,
-- p_starts, p_ends, p_headings) replace the ones it had:
--   * only if the row still exists, passes the filter, and still holds the
--     value the elements were computed from (p_hashes: md5 of its key columns,
--     as the claim read them). This is what keeps a slow write of an older value
--     (or one whose row has since been emptied: no element left to compare a
--     stamp with) from bringing its elements back;
--   * an element whose value is unchanged is left as it was (not even
--     rewritten), so a listener chained on these outputs (the chunks'
--     embeddings) sees only the elements that changed;
--   * elements past the row's new count are removed.
-- The rest (gone rows, withdrawals, acknowledgements) is write.sql's, in
-- write_finish.sql.
CREATE FUNCTION {{fn_write}}(
  {{pk_params}}, p_stamps bigint[], p_hashes text[], p_counts integer[],
  p_rows integer[], p_positions integer[], p_outputs {{output_type}}[],
  p_starts integer[], p_ends integer[], p_headings jsonb[],
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
  v_outputs_written bigint;  -- for write_finish: outputs rows (elements) this write made
  v_followers text := '';   -- for write_finish: the listeners following this backfill (',12,15,')
  v_failures boolean;
  v_live boolean[];
  v_inserted boolean := false;
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

  v_failures := EXISTS (SELECT 1 FROM superduper._failures WHERE listener_id = {{listener_id}});

  -- Which rows get their elements written (v_live[ordinal]): still there,
  -- passing the filter, holding the value that was computed, and with no
  -- failure of a newer value.
  SELECT coalesce(array_agg(
           EXISTS (SELECT 1 FROM {{source}} AS src
                   WHERE {{pk_eq_src_u}} AND {{filter}} AND {{hash_src}} = u.hash)
           AND NOT (v_failures AND EXISTS (SELECT 1 FROM superduper._failures AS f
                                           WHERE f.listener_id = {{listener_id}} AND f.pk = {{pk_json_u}}
                                             AND f.stamp > coalesce(u.stamp, 0)))
           ORDER BY u.ord), '{}')
  INTO v_live
  FROM unnest({{pk_args}}, p_stamps, p_hashes) WITH ORDINALITY AS u({{pk_unnest_cols}}, stamp, hash, ord);
  SELECT count(*) INTO v_written FROM unnest(v_live) AS l(live) WHERE l.live;

  -- A first backfill range has no elements yet: a plain INSERT (half an upsert's
  -- cost, see write.sql), and the upsert below if any row has one.
  IF p_chunk IS NOT NULL AND v_written > 0 THEN
    BEGIN
      INSERT INTO {{outputs}} ({{pk_cols}}, _position, output, _start, _end, _headings, _stamp)
      SELECT {{pk_values_u}}, e.position, e.output, e.start_at, e.end_at,
             CASE WHEN e.headings IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(e.headings)) END,
             coalesce(u.stamp, 0)
      FROM unnest(p_rows, p_positions, p_outputs, p_starts, p_ends, p_headings) AS e(row_ord, position, output, start_at, end_at, headings)
      JOIN unnest({{pk_args}}, p_stamps) WITH ORDINALITY AS u({{pk_unnest_cols}}, stamp, ord) ON u.ord = e.row_ord
      WHERE v_live[u.ord::integer];
      v_inserted := true;
    EXCEPTION WHEN unique_violation THEN
      v_inserted := false;
    END;
  END IF;

  IF NOT v_inserted AND v_written > 0 THEN
    -- Not an upsert: INSERT ... ON CONFLICT fires the BEFORE INSERT triggers of
    -- a listener chained on this table for every element, changed or not.
    -- Elements whose value or lineage changed are updated; an unchanged one
    -- keeps its row version, so the chained listener sees only what changed
    -- (editing one paragraph re-embeds one or two chunks).
    UPDATE {{outputs}} AS t
    SET output = u.output, _start = u.start_at, _end = u.end_at, _headings = u.headings,
        _stamp = coalesce(u.stamp, 0), _computed_at = now()
    FROM (SELECT r.*, e.position, e.output, e.start_at, e.end_at,
                 CASE WHEN e.headings IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(e.headings)) END AS headings
          FROM unnest(p_rows, p_positions, p_outputs, p_starts, p_ends, p_headings) AS e(row_ord, position, output, start_at, end_at, headings)
          JOIN unnest({{pk_args}}, p_stamps) WITH ORDINALITY AS r({{pk_unnest_cols}}, stamp, ord) ON r.ord = e.row_ord
          WHERE v_live[r.ord::integer]) AS u
    WHERE {{pk_eq_t_u}} AND t._position = u.position
      AND (t.output::text IS DISTINCT FROM u.output::text
           OR t._start IS DISTINCT FROM u.start_at OR t._end IS DISTINCT FROM u.end_at
           OR t._headings IS DISTINCT FROM u.headings);

    -- New positions. DO NOTHING only for a concurrent writer of the same value.
    INSERT INTO {{outputs}} ({{pk_cols}}, _position, output, _start, _end, _headings, _stamp)
    SELECT {{pk_values_u}}, e.position, e.output, e.start_at, e.end_at,
           CASE WHEN e.headings IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(e.headings)) END,
           coalesce(u.stamp, 0)
    FROM unnest(p_rows, p_positions, p_outputs, p_starts, p_ends, p_headings) AS e(row_ord, position, output, start_at, end_at, headings)
    JOIN unnest({{pk_args}}, p_stamps) WITH ORDINALITY AS u({{pk_unnest_cols}}, stamp, ord) ON u.ord = e.row_ord
    WHERE v_live[u.ord::integer]
      AND NOT EXISTS (SELECT 1 FROM {{outputs}} AS t WHERE {{pk_eq_t_u}} AND t._position = e.position)
    ON CONFLICT DO NOTHING;

    DELETE FROM {{outputs}} AS t
    USING unnest({{pk_args}}, p_counts) WITH ORDINALITY AS u({{pk_unnest_cols}}, count, ord)
    WHERE {{pk_eq_t_u}} AND v_live[u.ord::integer] AND t._position >= u.count;
  END IF;

  -- Rows that are gone, or changed again since they were read: gone ones lose
  -- their elements (a changed one is queued again and written then).
  IF v_written < cardinality(p_pk1) THEN
    DELETE FROM {{outputs}} AS t
    USING unnest({{pk_args}}) AS u({{pk_unnest_cols}})
    WHERE {{pk_eq_t_u}}
      AND NOT EXISTS (SELECT 1 FROM {{source}} AS src WHERE {{pk_eq_src_u}} AND {{filter}});
  END IF;

  IF v_followers <> '' THEN
    SELECT count(*) INTO v_outputs_written FROM unnest(p_rows) AS e(row_ord) WHERE v_live[e.row_ord];
  END IF;
{{write_finish}}
  RETURN v_written;
END
{{q}};
