-- Schedules: a component that fires an action on a cron expression.
--
--   SELECT superduper.apply('{"type": "schedule", "name": "nightly_refresh",
--     "cron": "0 3 * * *", "timezone": "Europe/Paris", "missed": "catch_up_once",
--     "action": {"refresh": "docs_summary"}}');
--
-- The database keeps what is due; sidecars fire it. A sidecar computes each
-- schedule's next due time from its cron expression (cron-parser, in
-- TypeScript: src/schedules/), and when it is due claims the firing by inserting
-- its run, keyed by (schedule, due time): however many sidecars look, one
-- inserts it, and only that one runs the action. A run whose sidecar stopped
-- answering (its lease ran out) is taken over, at most three times, then
-- failed with the reason. The action today is {"refresh": "<listener>"}:
-- every output of the listener computed again (superduper.refresh), say
-- nightly from an API model whose answers change; or {"train": "<trainer>"}: a
-- run of the trainer queued (047_trainers.sql), fitted by a sidecar.

SELECT superduper._component_type('schedule', 'schedule', '_schedules', 40, @{spec_versions.schedule});
SELECT superduper._component_non_breaking('schedule', ARRAY[@{identity.schedule}]);

-- p_search_path is unused: an action names a listener, not a table.
CREATE OR REPLACE FUNCTION superduper._apply_schedule(p_spec jsonb, p_search_path text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text := p_spec ->> 'name';
  v_cron text := p_spec ->> 'cron';
  v_timezone text := coalesce(p_spec ->> 'timezone', 'UTC');
  v_missed text := coalesce(p_spec ->> 'missed', 'skip');
  v_grace numeric;
  v_action jsonb := p_spec -> 'action';
  v_unknown text;
  v_spec jsonb;
  v_old superduper._schedules;
BEGIN
  IF jsonb_typeof(p_spec -> 'name') IS DISTINCT FROM 'string' OR btrim(v_name) = '' OR octet_length(v_name) > 63 THEN
    RAISE EXCEPTION 'superduper.apply: a schedule needs a "name" of 1 to 63 bytes';
  END IF;
  SELECT string_agg(quote_literal(k), ', ' ORDER BY k) INTO v_unknown
  FROM jsonb_object_keys(p_spec) AS k WHERE k NOT IN ('type', 'name', 'cron', 'timezone', 'missed', 'grace_seconds', 'action');
  IF v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'superduper: schedule "%": unknown field(s) %', v_name, v_unknown
      USING HINT = 'Fields: name, cron, timezone, missed, grace_seconds, action.';
  END IF;
  -- The shape of a cron expression: five fields (minute hour day month weekday),
  -- or six with seconds first. Each field's meaning is checked by the sidecar's
  -- parser (TypeScript's schedule() checks it before the apply).
  IF jsonb_typeof(p_spec -> 'cron') IS DISTINCT FROM 'string'
     OR cardinality(regexp_split_to_array(btrim(v_cron), '\s+')) NOT BETWEEN 5 AND 6
     OR EXISTS (SELECT 1 FROM regexp_split_to_table(btrim(v_cron), '\s+') AS f WHERE f !~ '^[0-9A-Za-z*/,?#-]+$') THEN
    RAISE EXCEPTION 'superduper: schedule "%": "cron" must be a cron expression of 5 fields (minute hour day month weekday) or 6 (seconds first), not %',
      v_name, coalesce(p_spec -> 'cron', 'null'::jsonb)
      USING HINT = 'For example "0 3 * * *" (03:00 every day) or "*/30 * * * * *" (every 30 seconds).';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = v_timezone) THEN
    RAISE EXCEPTION 'superduper: schedule "%": unknown time zone %', v_name, quote_literal(v_timezone)
      USING HINT = 'A name from pg_timezone_names, such as UTC or Europe/Paris.';
  END IF;
  IF v_missed NOT IN ('skip', 'catch_up_once') THEN
    RAISE EXCEPTION 'superduper: schedule "%": "missed" must be "skip" or "catch_up_once", not %', v_name, p_spec -> 'missed';
  END IF;
  IF p_spec ? 'grace_seconds' AND (jsonb_typeof(p_spec -> 'grace_seconds') <> 'number' OR (p_spec ->> 'grace_seconds')::numeric < 0) THEN
    RAISE EXCEPTION 'superduper: schedule "%": "grace_seconds" must be a number of seconds, 0 or more, not %', v_name, p_spec -> 'grace_seconds';
  END IF;
  v_grace := coalesce((p_spec ->> 'grace_seconds')::numeric, 60);
  IF jsonb_typeof(v_action) IS DISTINCT FROM 'object'
     OR (SELECT array_agg(k) FROM jsonb_object_keys(v_action) AS k) NOT IN (ARRAY['refresh'], ARRAY['train'])
     OR jsonb_typeof(coalesce(v_action -> 'refresh', v_action -> 'train')) <> 'string' THEN
    RAISE EXCEPTION 'superduper: schedule "%": "action" must be {"refresh": "<listener>"} or {"train": "<trainer>"}, not %', v_name, coalesce(v_action, 'null'::jsonb)
      USING HINT = 'A refresh computes every output of the listener again; train queues a run of the trainer.';
  END IF;
  IF v_action ? 'train' AND NOT EXISTS (SELECT 1 FROM superduper._trainers WHERE name = v_action ->> 'train') THEN
    RAISE EXCEPTION 'superduper: schedule "%": no trainer named % to train', v_name, quote_literal(v_action ->> 'train')
      USING HINT = 'Trainers: ' || coalesce((SELECT string_agg(quote_literal(name), ', ' ORDER BY name) FROM superduper._trainers), '(none)');
  END IF;
  IF v_action ? 'refresh' AND NOT EXISTS (SELECT 1 FROM superduper._listeners WHERE name = v_action ->> 'refresh') THEN
    RAISE EXCEPTION 'superduper: schedule "%": no listener named % to refresh', v_name, coalesce(quote_literal(v_action ->> 'refresh'), 'NULL')
      USING HINT = 'Listeners: ' || coalesce((SELECT string_agg(DISTINCT quote_literal(name), ', ') FROM superduper._listeners), '(none)');
  END IF;

  v_spec := jsonb_build_object('type', 'schedule', 'name', v_name, 'cron', btrim(v_cron), 'timezone', v_timezone,
                               'missed', v_missed, 'grace_seconds', v_grace, 'action', v_action);
  SELECT * INTO v_old FROM superduper._schedules WHERE name = v_name FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO superduper._schedules (name, cron, timezone, missed, grace, action, spec)
    VALUES (v_name, v_spec ->> 'cron', v_timezone, v_missed, make_interval(secs => v_grace), v_action, v_spec);
    RETURN jsonb_build_object('type', 'schedule', 'name', v_name, 'action', 'created');
  END IF;
  IF v_old.spec = v_spec THEN
    RETURN jsonb_build_object('type', 'schedule', 'name', v_name, 'action', 'unchanged');
  END IF;
  -- Another expression or time zone: the next due time is computed again.
  UPDATE superduper._schedules
  SET cron = v_spec ->> 'cron', timezone = v_timezone, missed = v_missed, grace = make_interval(secs => v_grace),
      action = v_action, spec = v_spec, updated_at = now(),
      next_at = CASE WHEN v_old.cron = v_spec ->> 'cron' AND v_old.timezone = v_timezone THEN v_old.next_at END,
      error = CASE WHEN v_old.cron = v_spec ->> 'cron' AND v_old.timezone = v_timezone THEN v_old.error END
  WHERE name = v_name;
  RETURN jsonb_build_object('type', 'schedule', 'name', v_name, 'action', 'updated');
END
$$;

CREATE OR REPLACE FUNCTION superduper._remove_schedule(p_name text, p_keep_outputs boolean, p_cascade boolean)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  DELETE FROM superduper._schedules WHERE name = p_name;
  RETURN jsonb_build_array(jsonb_build_object('type', 'schedule', 'name', p_name, 'action', 'removed'));
END
$$;

-- Computes every output of a listener's current version again: each row
-- passing its filter is queued (its output is replaced when computed; until
-- then the current one stays). Returns how many rows were queued.
CREATE OR REPLACE FUNCTION superduper.refresh(p_listener text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_id integer;
  v_vars jsonb;
  v_count bigint;
BEGIN
  SELECT id INTO v_id FROM superduper._listeners WHERE name = p_listener AND state = 'current';
  IF v_id IS NULL THEN
    RAISE EXCEPTION 'superduper.refresh: no listener named %', coalesce(quote_literal(p_listener), 'NULL');
  END IF;
  v_vars := superduper._listener_vars(v_id);
  EXECUTE format('INSERT INTO superduper._changes (listener_id, pk) SELECT %s, %s FROM %s AS src WHERE %s',
                 v_id, v_vars ->> 'pk_json_src', v_vars ->> 'source', v_vars ->> 'filter');
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM superduper._wake(v_id);
  END IF;
  RETURN v_count;
END
$$;

-- For sidecars: each schedule, with what a sidecar needs to decide what is due.
CREATE OR REPLACE FUNCTION superduper._schedules_due()
RETURNS TABLE (name text, cron text, timezone text, missed text, grace_seconds float8, next_at timestamptz, now timestamptz,
               last_due timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s.name, s.cron, s.timezone, s.missed, extract(epoch FROM s.grace)::float8, s.next_at, now(),
         (SELECT max(r.due_at) FROM superduper._schedule_runs r WHERE r.schedule = s.name)
  FROM superduper._schedules s ORDER BY s.name
$$;

-- For sidecars: the next due time of a schedule (as its cron expression gives
-- it, computed in TypeScript), or why there is none.
CREATE OR REPLACE FUNCTION superduper._schedule_next(p_name text, p_next_at timestamptz, p_error text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE superduper._schedules SET next_at = p_next_at, error = p_error WHERE name = p_name
$$;

-- For sidecars: claims the firing of p_name due at p_due. true when this
-- sidecar is to run it: it inserted the run, or took over one whose sidecar
-- stopped answering (at most three attempts; then the run fails, saying so).
-- p_skip records the firing as skipped (missed, under the "skip" policy), with
-- p_note saying what was missed. The schedule's next due time moves on either way.
CREATE OR REPLACE FUNCTION superduper._schedule_claim(p_name text, p_due timestamptz, p_next_at timestamptz, p_worker text,
                                                      p_lease interval, p_skip boolean, p_note jsonb)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_run superduper._schedule_runs;
BEGIN
  UPDATE superduper._schedules SET next_at = p_next_at, error = NULL WHERE name = p_name;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO superduper._schedule_runs AS r (schedule, due_at, state, claimed_by, lease_until, result, finished_at)
  VALUES (p_name, p_due, CASE WHEN p_skip THEN 'skipped' ELSE 'running' END, p_worker, now() + p_lease, p_note,
          CASE WHEN p_skip THEN now() END)
  ON CONFLICT (schedule, due_at) DO NOTHING
  RETURNING * INTO v_run;
  IF FOUND THEN
    RETURN NOT p_skip;
  END IF;
  -- Another sidecar's: taken over only if it is running and its lease ran out.
  UPDATE superduper._schedule_runs AS r
  SET claimed_by = p_worker, lease_until = now() + p_lease, attempts = r.attempts + 1,
      state = CASE WHEN r.attempts >= 3 THEN 'failed' ELSE 'running' END,
      error = CASE WHEN r.attempts >= 3 THEN format('its sidecar stopped answering %s times (last: %s)', r.attempts, r.claimed_by) END,
      finished_at = CASE WHEN r.attempts >= 3 THEN now() END
  WHERE r.schedule = p_name AND r.due_at = p_due AND r.state = 'running' AND r.lease_until < now()
  RETURNING * INTO v_run;
  RETURN FOUND AND v_run.state = 'running';
END
$$;

-- For sidecars: runs a claimed firing's action, in one transaction with its
-- record: done with what it did, or failed with the error.
CREATE OR REPLACE FUNCTION superduper._schedule_run(p_name text, p_due timestamptz, p_worker text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_action jsonb;
  v_result jsonb;
BEGIN
  SELECT action INTO v_action FROM superduper._schedules WHERE name = p_name;
  PERFORM 1 FROM superduper._schedule_runs
  WHERE schedule = p_name AND due_at = p_due AND claimed_by = p_worker AND state = 'running' FOR UPDATE;
  IF v_action IS NULL OR NOT FOUND THEN
    RETURN NULL; -- removed, or taken over meanwhile
  END IF;
  BEGIN
    v_result := CASE WHEN v_action ? 'train'
                     THEN jsonb_build_object('run', superduper._training_queue(v_action ->> 'train', 'schedule'))
                     ELSE jsonb_build_object('queued', superduper.refresh(v_action ->> 'refresh')) END;
    UPDATE superduper._schedule_runs SET state = 'done', result = coalesce(result, '{}') || v_result, finished_at = now()
    WHERE schedule = p_name AND due_at = p_due;
  EXCEPTION WHEN OTHERS THEN
    UPDATE superduper._schedule_runs SET state = 'failed', error = SQLERRM, finished_at = now()
    WHERE schedule = p_name AND due_at = p_due;
    v_result := jsonb_build_object('error', SQLERRM);
  END;
  RETURN v_result;
END
$$;

-- For people: each schedule, its next due time, and its last firing.
CREATE OR REPLACE VIEW superduper.schedules AS
SELECT s.name, s.cron, s.timezone, s.missed, extract(epoch FROM s.grace)::float8 AS grace_seconds, s.action, s.next_at,
       r.due_at AS last_due_at, r.state AS last_state, r.finished_at AS last_finished_at, r.result AS last_result,
       r.error AS last_error, s.error, s.created_at, s.updated_at, s.spec_version
FROM superduper._schedules s
LEFT JOIN LATERAL (SELECT * FROM superduper._schedule_runs x WHERE x.schedule = s.name ORDER BY x.due_at DESC LIMIT 1) r ON true;

-- Every firing, for people: superduper.schedule_runs.
CREATE OR REPLACE VIEW superduper.schedule_runs AS
SELECT schedule, due_at, state, claimed_by, attempts, started_at, finished_at, result, error FROM superduper._schedule_runs;
