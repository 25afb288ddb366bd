-- AFTER TRUNCATE: the listener's outputs, queue, log, backfill and failures go
-- with it.
CREATE FUNCTION {{fn_truncate}}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS {{q}}
BEGIN
  TRUNCATE {{outputs}};
  DELETE FROM superduper._changes WHERE listener_id = {{listener_id}};
  DELETE FROM superduper._queue WHERE listener_id = {{listener_id}};
  DELETE FROM superduper._backfill WHERE listener_id = {{listener_id}};
  DELETE FROM superduper._backfill_cursor WHERE listener_id = {{listener_id}};
  DELETE FROM superduper._failures WHERE listener_id = {{listener_id}};
  RETURN NULL;
END
{{q}};

CREATE TRIGGER {{trg_truncate}} AFTER TRUNCATE ON {{source}}
FOR EACH STATEMENT EXECUTE FUNCTION {{fn_truncate}}();
