-- AFTER UPDATE: queue rows whose key columns (or primary key, or filter match)
-- changed; an UPDATE that touches only other columns queues nothing.
CREATE FUNCTION {{fn_update}}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS {{q}}
DECLARE
  v_queued boolean := false;
BEGIN
  -- Rows that left the listener: their primary key changed, or they no longer pass
  -- the filter. Their outputs go at once. Their old key is queued as well, so that
  -- a sidecar writing that very row at this moment has its output cleaned up.
  WITH gone AS (
    SELECT o.* FROM old_rows AS o
    WHERE {{filter}}
      AND NOT EXISTS (SELECT 1 FROM new_rows AS n WHERE {{pk_eq_on}} AND {{filter}})
  ), dropped AS (
    DELETE FROM {{outputs}} AS t USING gone AS o WHERE {{pk_eq_to}}
  )
  INSERT INTO superduper._queue (listener_id, pk)
  SELECT {{listener_id}}, {{pk_json_o}} FROM gone AS o;
  v_queued := FOUND;

  -- Rows to compute: they pass the filter and no old row had the same primary
  -- key, the same key values and passed the filter too.
  INSERT INTO superduper._queue (listener_id, pk)
  SELECT {{listener_id}}, {{pk_json_n}} FROM new_rows AS n
  WHERE {{filter}}
    AND NOT EXISTS (SELECT 1 FROM old_rows AS o WHERE {{pk_eq_on}} AND {{keys_same_on}} AND {{filter}});
  IF FOUND OR v_queued THEN
    PERFORM superduper._wake({{listener_id}});
  END IF;
  RETURN NULL;
END
{{q}};

CREATE TRIGGER {{trg_update}} AFTER UPDATE ON {{source}}
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION {{fn_update}}();
