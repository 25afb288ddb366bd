-- AFTER DELETE: outputs of deleted rows go at once, in the user's transaction.
CREATE FUNCTION {{fn_delete}}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS {{q}}
BEGIN
  DELETE FROM {{outputs}} AS t USING old_rows AS o WHERE {{pk_eq_to}};
  -- A sidecar may be computing one of these rows right now (it is queued, or a
  -- backfill is running) and write its output after our DELETE. Queueing the key
  -- again makes a sidecar look at the row once more, find it gone, and remove
  -- whatever was written.
  INSERT INTO superduper._queue (listener_id, pk)
  SELECT {{listener_id}}, {{pk_json_o}} FROM old_rows AS o
  WHERE superduper._backfilling({{listener_id}})
     OR EXISTS (SELECT 1 FROM superduper._queue AS q
                WHERE q.listener_id = {{listener_id}} AND q.pk = {{pk_json_o}});
  IF FOUND THEN
    PERFORM superduper._wake({{listener_id}});
  END IF;
  RETURN NULL;
END
{{q}};

CREATE TRIGGER {{trg_delete}} AFTER DELETE ON {{source}}
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION {{fn_delete}}();
