-- AFTER INSERT: queue every inserted row that passes the listener's filter.
CREATE FUNCTION {{fn_insert}}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS {{q}}
BEGIN
  INSERT INTO superduper._queue (listener_id, pk)
  SELECT {{listener_id}}, {{pk_json_n}} FROM new_rows AS n WHERE {{filter}};
  IF FOUND THEN
    PERFORM superduper._wake({{listener_id}});
  END IF;
  RETURN NULL;
END
{{q}};

CREATE TRIGGER {{trg_insert}} AFTER INSERT ON {{source}}
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION {{fn_insert}}();
