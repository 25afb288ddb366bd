-- Plan before apply: what superduper.apply(p_spec) would do, without doing it.
--
--   SELECT superduper.plan('{"type": "application", "name": "docs_search", "components": [...]}');
--
-- The plan runs the apply itself, in a subtransaction it then rolls back, so
-- that it says exactly what the apply would (the same checks, the same
-- refusals, the same actions), and adds what the apply does not say: each
-- result is marked "destructive" when it removes or replaces outputs
-- (removed, rebuilding), and a listener that computes rows says how many
-- ("rows") and, when its model is an API model billed per token, about how
-- many tokens its backfill sends ("tokens_estimate": the rows times the mean
-- length of their key columns over a sample of 1,000, at four characters a
-- token, the budget rag() counts with too). It does not build what only the
-- real apply needs (superduper._planning): an HNSW graph is created over no
-- rows, and a full-text index's words are not computed, so a plan over a
-- large outputs table does not cost what its apply will. Nothing it did is left: no
-- table, trigger, registry row or notification; model files stored by the
-- caller beforehand are the caller's to roll back (the TypeScript API and
-- the CLI plan in a transaction they roll back).
CREATE OR REPLACE FUNCTION superduper.plan(p_spec jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
  v_plan jsonb;
BEGIN
  BEGIN
    -- Undone with the rest: a setting made in this subtransaction goes with it.
    PERFORM pg_catalog.set_config('superduper.planning', 'on', true);
    v_plan := superduper._plan_annotate(superduper.apply(p_spec));
    RAISE EXCEPTION USING ERRCODE = '@{sqlstates.plan_rollback}', MESSAGE = 'superduper.plan: rolled back';
  EXCEPTION WHEN SQLSTATE '@{sqlstates.plan_rollback}' THEN
    -- The apply is undone; the plan (a variable, not a row) is kept.
    NULL;
  END;
  RETURN v_plan;
END
$$;

-- The apply's results (one, or an array; an application's components
-- inside), each marked destructive or not, with its listener's estimates,
-- read while the apply is still in place.
CREATE OR REPLACE FUNCTION superduper._plan_annotate(p_results jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_result jsonb := p_results;
BEGIN
  IF jsonb_typeof(p_results) = 'array' THEN
    RETURN coalesce((SELECT jsonb_agg(superduper._plan_annotate(r) ORDER BY o) FROM jsonb_array_elements(p_results) WITH ORDINALITY AS x(r, o)), '[]');
  END IF;
  -- A listener rebuilt replaces its outputs (and computes them all again); a
  -- vector index rebuilt keeps answering from its current graph until the new
  -- one is built, and loses nothing.
  v_result := v_result || jsonb_build_object('destructive', coalesce(v_result ->> 'action' = 'removed'
    OR (v_result ->> 'action' = 'rebuilding' AND v_result ->> 'type' <> 'vector_index'), false));
  IF v_result ? 'components' THEN
    v_result := v_result || jsonb_build_object('components', superduper._plan_annotate(v_result -> 'components'));
    v_result := v_result || jsonb_build_object('destructive',
      EXISTS (SELECT 1 FROM jsonb_array_elements(v_result -> 'components') AS c WHERE (c ->> 'destructive')::boolean));
  END IF;
  IF v_result ->> 'type' = 'listener' AND v_result ->> 'action' IN ('created', 'rebuilding', 'updated') THEN
    v_result := v_result || superduper._plan_listener(v_result ->> 'name');
  END IF;
  IF v_result ->> 'type' = 'vector_index' AND v_result ->> 'action' IN ('created', 'rebuilding') THEN
    v_result := v_result || superduper._plan_vector_index(v_result ->> 'name');
  END IF;
  RETURN v_result;
END
$$;

-- The vectors a new vector index version would index: its listener's current outputs.
CREATE OR REPLACE FUNCTION superduper._plan_vector_index(p_name text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_outputs text;
  v_rows bigint;
BEGIN
  SELECT l.output_table INTO v_outputs
  FROM superduper._vector_indexes v JOIN superduper._listeners l ON l.name = v.listener AND l.state = 'current'
  WHERE v.name = p_name ORDER BY v.version DESC LIMIT 1;
  IF v_outputs IS NULL THEN
    RETURN '{}';
  END IF;
  EXECUTE format('SELECT count(*) FROM superduper.%I', v_outputs) INTO v_rows;
  RETURN jsonb_build_object('rows', v_rows);
END
$$;

-- A listener's rows to compute (its newest version's backfill) and, for a
-- model billed per token, the tokens that backfill would send.
CREATE OR REPLACE FUNCTION superduper._plan_listener(p_name text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  l superduper._listeners;
  v_vars jsonb;
  v_runtime text;
  v_rows bigint;
  v_chars numeric;
BEGIN
  SELECT * INTO l FROM superduper._listeners WHERE name = p_name ORDER BY version DESC LIMIT 1;
  IF NOT FOUND THEN
    RETURN '{}';
  END IF;
  v_rows := coalesce((SELECT c.total - c.handed_out FROM superduper._backfill_cursor AS c WHERE c.listener_id = l.id), 0)
            + (SELECT count(*) FROM superduper._changes AS ch WHERE ch.listener_id = l.id);
  SELECT m.runtime INTO v_runtime FROM superduper._models AS m WHERE m.name = l.model;
  IF NOT v_runtime = ANY (ARRAY[@{runtimes.billed}]) THEN
    RETURN jsonb_build_object('rows', v_rows);
  END IF;
  v_vars := superduper._listener_vars(l.id);
  EXECUTE format('SELECT avg(%s) FROM (SELECT * FROM %s AS src WHERE %s LIMIT 1000) AS src',
                 (SELECT string_agg(format('octet_length(coalesce(src.%I::text, %L))', k, ''), ' + ') FROM unnest(l.keys) AS k),
                 v_vars ->> 'source', v_vars ->> 'filter')
  INTO v_chars;
  RETURN jsonb_build_object('rows', v_rows, 'tokens_estimate', ceil(v_rows * coalesce(v_chars, 0) / 4.0));
END
$$;
