-- AFTER DELETE, per statement: outputs of deleted rows go at once, in the
-- user's transaction, in one statement however many rows were deleted.
CREATE FUNCTION {{fn_delete}}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS {{q}}
BEGIN
  DELETE FROM {{outputs}} AS t USING old_rows AS o WHERE {{pk_eq_to}};
  -- A deleted row's failure is moot (and superduper.wait_for would report it).
  IF EXISTS (SELECT 1 FROM superduper._failures AS f WHERE f.listener_id = {{listener_id}}) THEN
    DELETE FROM superduper._failures AS f USING old_rows AS o
    WHERE f.listener_id = {{listener_id}} AND f.pk = {{pk_json_o}};
  END IF;
  -- A sidecar may be computing one of these rows right now (one is claimed or
  -- queued, or a backfill runs) and write its output after this DELETE. Logging
  -- the keys makes a sidecar look at the rows once more, find them gone, and
  -- remove whatever was written.
  IF EXISTS (SELECT 1 FROM superduper._queue AS q WHERE q.listener_id = {{listener_id}})
     OR superduper._backfilling({{listener_id}}) THEN
    INSERT INTO superduper._changes (listener_id, pk)
    SELECT {{listener_id}}, {{pk_json_o}} FROM old_rows AS o;
    PERFORM superduper._wake({{listener_id}});
  END IF;
  RETURN NULL;
END
{{q}};

CREATE TRIGGER {{trg_delete}} AFTER DELETE ON {{source}}
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION {{fn_delete}}();
