-- Locks between DDL on listener versions and the sidecars' work on them (see
-- docs/architecture.md, "DDL while work is in flight"): one advisory lock per
-- version, @{locks.listener_namespace} with the version's id.

-- Takes what DDL on listener versions needs before it touches anything: the
-- versions (and those reading their outputs, down the chain) exclusively, then
-- their source and outputs tables in ACCESS EXCLUSIVE mode, upstream first.
--
-- Why: a sidecar's claim or write locks a listener's tables in its own order
-- (outputs, then source), users' deletes in theirs (source, then outputs
-- through the delete trigger), and dropping triggers and tables in yet another
-- made a remove fail with "deadlock detected". Sidecar transactions take their
-- listener's lock in shared mode before any table (see the claim, claim_chunk
-- and write templates, and superduper._fail), so DDL waits here for the work in
-- flight to commit, and work that starts later waits for the DDL. Tables are
-- locked in chain order, as users' writes reach them. Held to the end of the
-- transaction; taking it twice is harmless.
CREATE OR REPLACE FUNCTION superduper._lock_listeners(p_ids integer[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids integer[];
  v_relation regclass;
BEGIN
  WITH RECURSIVE down(id) AS (
    SELECT id FROM unnest(p_ids) AS id WHERE id IS NOT NULL
    UNION
    SELECT d.id FROM down
    JOIN superduper._listeners AS l ON l.id = down.id
    JOIN superduper._listeners AS d ON d.source_schema = 'superduper' AND d.source_table = l.output_table
  )
  SELECT array_agg(id ORDER BY id) INTO v_ids FROM down;
  PERFORM pg_advisory_xact_lock(@{locks.listener_namespace}, id) FROM unnest(v_ids) AS id ORDER BY id;

  FOR v_relation IN
    WITH RECURSIVE depth(id, depth) AS (
      SELECT l.id, 0 FROM superduper._listeners AS l
      WHERE NOT EXISTS (SELECT 1 FROM superduper._listeners AS u
                        WHERE l.source_schema = 'superduper' AND l.source_table = u.output_table)
      UNION
      SELECT d.id, depth.depth + 1 FROM depth
      JOIN superduper._listeners AS l ON l.id = depth.id
      JOIN superduper._listeners AS d ON d.source_schema = 'superduper' AND d.source_table = l.output_table
      WHERE depth.depth < 1000
    ), relations AS (
      SELECT c.oid::regclass AS relation, max(r.depth) AS depth
      FROM superduper._listeners AS l
      JOIN (SELECT id, max(depth) AS depth FROM depth GROUP BY id) AS dl ON dl.id = l.id
      CROSS JOIN LATERAL (VALUES (l.source, dl.depth),
                                 (to_regclass(superduper._qualify('superduper', l.output_table)), dl.depth + 1)) AS r(relation, depth)
      JOIN pg_class AS c ON c.oid = r.relation
      WHERE l.id = ANY (v_ids)
      GROUP BY c.oid
    )
    SELECT relation FROM relations ORDER BY depth, relation::oid
  LOOP
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', v_relation);
  END LOOP;
END
$$;

-- The first statement of every rendered claim and write. Takes the listener's
-- lock in shared mode before any table, so that DDL on the listener waits for
-- this transaction (superduper._lock_listeners) and this transaction for DDL
-- already under way. After such a wait the calling code may have been replaced
-- (a changed filter, a promotion) or dropped: then it must not run, and the
-- caller gets SQLSTATE @{sqlstates.code_replaced} and calls again, reaching the current code.
--
-- It also sets this transaction's commit not to wait for its WAL flush: a
-- claim's leases and a write's outputs are derived state. A crash that loses the
-- last of them loses them whole (a write's outputs with the queue entries they
-- acknowledge), and the rows are claimed and computed again; what users write
-- is never committed this way. (docs/architecture.md, "Derived state commits
-- without waiting for the disk".)
CREATE OR REPLACE FUNCTION superduper._enter_listener(p_id integer, p_code_version integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pg_catalog.set_config('synchronous_commit', 'off', true);
  PERFORM pg_advisory_xact_lock_shared(@{locks.listener_namespace}, p_id);
  IF NOT EXISTS (SELECT 1 FROM superduper._listeners WHERE id = p_id AND code_version = p_code_version) THEN
    RAISE EXCEPTION 'superduper: the code of listener version % was replaced or dropped while this call waited', p_id
      USING ERRCODE = '@{sqlstates.code_replaced}', HINT = 'Call it again.';
  END IF;
END
$$;
