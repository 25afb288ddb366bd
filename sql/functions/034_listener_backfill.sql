-- The backfill of a listener version's existing rows: planned when the version
-- is created (or its filter changes), handed out in ranges by its claim_chunk
-- function (../templates/claim_chunk.sql), and, when done, the promotion of a
-- building version to current.

-- Starts the backfill: existing rows that pass the filter are handed out to
-- sidecars in ranges of chunk_size keys, from a cursor at the first key (see
-- the claim_chunk template). Only the first key and the row count are read here,
-- so applying a listener to a large table holds its trigger lock briefly.
CREATE OR REPLACE FUNCTION superduper._listener_backfill_plan(p_id integer)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  l superduper._listeners;
  v_vars jsonb := superduper._listener_vars(p_id);
  v_first jsonb;
  v_total bigint;
  v_low_water jsonb;
  v_cap jsonb;
  v_after boolean;
BEGIN
  SELECT * INTO l FROM superduper._listeners WHERE id = p_id;
  DELETE FROM superduper._backfill WHERE listener_id = p_id;
  DELETE FROM superduper._backfill_cursor WHERE listener_id = p_id;
  EXECUTE format('SELECT %s FROM %s AS src WHERE %s ORDER BY %s LIMIT 1',
                 v_vars ->> 'pk_json_src', v_vars ->> 'source', v_vars ->> 'filter', v_vars ->> 'pk_order_src')
  INTO v_first;
  EXECUTE format('SELECT count(*) FROM %s AS src WHERE %s', v_vars ->> 'source', v_vars ->> 'filter')
  INTO v_total;
  -- Chained on a listener whose backfill runs (035_backfill_follow.sql): what
  -- that backfill writes from its low water on passes this listener's
  -- triggers, so the cursor starts at the low water at the latest, even with
  -- no row yet.
  IF (v_vars ->> 'follows')::boolean THEN
    v_low_water := superduper._backfill_low_water(superduper._listener_upstream(p_id));
    IF v_low_water IS NOT NULL THEN
      v_cap := v_low_water || coalesce((SELECT jsonb_agg('-1'::text)
                                        FROM generate_series(jsonb_array_length(v_low_water) + 1, cardinality(l.pk))), '[]');
      IF v_first IS NOT NULL THEN
        EXECUTE format('SELECT %s > %s', v_vars ->> 'pk_row_arg1', v_vars ->> 'pk_row_arg2')
        INTO v_after USING v_first, v_cap;
      END IF;
      IF v_first IS NULL OR v_after THEN
        v_first := v_cap;
      END IF;
    END IF;
  END IF;
  IF v_first IS NOT NULL THEN
    INSERT INTO superduper._backfill_cursor (listener_id, next, total) VALUES (p_id, v_first, v_total);
  END IF;
  UPDATE superduper._listeners SET backfill_total = v_total, backfill_at = now() WHERE id = p_id;
  -- Listeners following this backfill may have read past where it now starts
  -- again (a changed filter): they start again too.
  PERFORM superduper._listener_backfill_plan(d.id)
  FROM superduper._listener_dependents(p_id) AS d
  WHERE NOT d.frozen AND superduper._backfilling(d.id);
  IF v_total > 0 THEN
    -- Sidecars start on it as soon as the apply commits.
    PERFORM pg_notify('@{notify.work.channel}', p_id::text);
  END IF;
  RETURN v_total;
END
$$;

-- Called when a version's last backfill range is written. A building version
-- replaces the current one: one transaction drops the old outputs and renames
-- the new table to the stable name, so readers see old outputs or new ones,
-- never a mix.
CREATE OR REPLACE FUNCTION superduper._backfill_finished(p_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_new superduper._listeners;
  v_old superduper._listeners;
  v_dependent superduper._listeners;
  v_rebuild text[] := '{}';
  v_stable text;
BEGIN
  SELECT * INTO v_new FROM superduper._listeners WHERE id = p_id FOR UPDATE;
  IF NOT FOUND OR v_new.state <> 'building' THEN
    RETURN;
  END IF;
  SELECT * INTO v_old FROM superduper._listeners WHERE name = v_new.name AND state = 'current' FOR UPDATE;
  v_stable := 'out_' || v_new.name;
  PERFORM superduper._lock_listeners(ARRAY[v_new.id, v_old.id]);

  IF v_old.id IS NOT NULL THEN
    -- Listeners reading the old outputs stop being maintained (their triggers go
    -- with the old table) and are rebuilt from the new outputs.
    FOR v_dependent IN SELECT * FROM superduper._listener_dependents(v_old.id) LOOP
      IF v_dependent.state = 'building' THEN
        PERFORM superduper._listener_version_drop(v_dependent.id, false);
      ELSE
        PERFORM superduper._listener_freeze(v_dependent.id, 'listener "' || v_new.name || '" it reads from was rebuilt');
      END IF;
      v_rebuild := v_rebuild || v_dependent.name;
    END LOOP;
    PERFORM superduper._listener_version_drop(v_old.id, false);
  END IF;

  PERFORM superduper._listener_code_drop(v_new.id);
  EXECUTE format('ALTER TABLE superduper.%I RENAME TO %I', v_new.output_table, v_stable);
  EXECUTE format('ALTER INDEX %s RENAME TO %I',
    (SELECT indexrelid::regclass::text FROM pg_index
     WHERE indrelid = superduper._qualify('superduper', v_stable)::regclass AND indisprimary),
    left(v_stable, 58) || '_pkey');
  UPDATE superduper._listeners
  SET state = 'current', output_table = v_stable, error = NULL, updated_at = now()
  WHERE id = v_new.id;
  PERFORM superduper._listener_code_create(v_new.id);
  -- Searches now read the new outputs (and the query model follows the
  -- listener's, unless the vector index names its own).
  UPDATE superduper._vector_indexes SET query_model = coalesce(spec ->> 'query_model', v_new.model), updated_at = now()
  WHERE listener = v_new.name;
  PERFORM superduper._vector_index_code_create(id) FROM superduper._vector_indexes WHERE listener = v_new.name AND state = 'current';

  PERFORM superduper._rebuild_listener(n, 'listener "' || v_new.name || '" it reads from was rebuilt')
  FROM (SELECT DISTINCT unnest(v_rebuild) AS n) AS d;
END
$$;
