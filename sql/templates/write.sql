-- Writes a batch of outputs and acknowledges the work it came from, in one
-- statement's transaction:
--   * outputs are upserted, kept only if the source row still exists and passes
--     the filter, and only over an output from an older (smaller) stamp;
--   * outputs of rows that are gone (p_gone, or deleted since they were read)
--     are removed;
--   * the claimed queue entries (p_ack_pks, p_ack_ids) and the backfill range
--     (p_chunk) are deleted; a failure recorded for a row now computed is cleared.
CREATE FUNCTION {{fn_write}}(
  p_pks text[], p_outputs {{output_type}}[], p_stamps bigint[],
  p_gone text[], p_ack_pks text[], p_ack_ids bigint[], p_chunk integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS {{q}}
#variable_conflict use_column
DECLARE
  v_written integer;
BEGIN
  WITH input AS (
    SELECT u.pk::jsonb AS pk, u.output, u.stamp
    FROM unnest(p_pks, p_outputs, p_stamps) AS u(pk, output, stamp)
  ), live AS (
    SELECT i.* FROM input AS i
    WHERE EXISTS (SELECT 1 FROM {{source}} AS src WHERE {{pk_eq_src_i}} AND {{filter}})
  )
  INSERT INTO {{outputs}} AS t ({{pk_cols}}, output, _stamp)
  SELECT {{pk_from_json_i}}, i.output, coalesce(i.stamp, 0) FROM live AS i
  ON CONFLICT ({{pk_cols}}) DO UPDATE
    SET output = excluded.output, _stamp = excluded._stamp, _computed_at = now()
    WHERE t._stamp < excluded._stamp;
  GET DIAGNOSTICS v_written = ROW_COUNT;

  DELETE FROM {{outputs}} AS t
  USING (
    SELECT g::jsonb AS pk FROM unnest(p_gone) AS g
    UNION ALL
    SELECT u::jsonb FROM unnest(p_pks) AS u
  ) AS i
  WHERE {{pk_eq_t_i}}
    AND NOT EXISTS (SELECT 1 FROM {{source}} AS src WHERE {{pk_eq_src_i}} AND {{filter}});

  IF p_ack_ids IS NOT NULL THEN
    DELETE FROM superduper._queue AS q
    USING unnest(p_ack_pks, p_ack_ids) AS a(pk, id)
    WHERE q.listener_id = {{listener_id}} AND q.pk = a.pk::jsonb AND q.id = a.id;
  END IF;

  IF EXISTS (SELECT 1 FROM superduper._failures WHERE listener_id = {{listener_id}}) THEN
    DELETE FROM superduper._failures AS f
    WHERE f.listener_id = {{listener_id}} AND f.pk = ANY (p_pks::jsonb[]);
  END IF;

  IF p_chunk IS NOT NULL THEN
    -- When this was the last range of a building version, the sidecar calls
    -- superduper._promote_ready() next, in a transaction of its own.
    DELETE FROM superduper._backfill AS b
    WHERE b.listener_id = {{listener_id}} AND b.chunk = p_chunk;
  END IF;

  RETURN v_written;
END
{{q}};
