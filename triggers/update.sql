-- AFTER UPDATE, per row, and only when the primary key, a key column or a
-- column the filter reads changed (the WHEN clause is checked without calling
-- the function): an UPDATE that changes no key column logs nothing.
CREATE FUNCTION {{fn_update}}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS {{q}}
DECLARE
  v_was boolean := {{filter_old}};
  v_is boolean := {{filter_new}};
BEGIN
  IF v_was AND (NOT v_is OR {{pk_changed}}) THEN
    -- The row left the listener (no longer passes the filter, or its key
    -- moved): its output goes now. Its old key is logged too, so that a sidecar
    -- writing that very row at this moment has its output cleaned up.
    DELETE FROM {{outputs}} AS t WHERE {{pk_eq_t_old}};
    INSERT INTO superduper._changes (listener_id, pk) VALUES ({{listener_id}}, {{pk_json_old}});
  END IF;
  -- Not when the backfill of the listener this one reads wrote it: this one's
  -- own backfill reads it (see sql/functions/035_backfill_follow.sql).
  IF v_is AND (NOT v_was OR {{pk_changed}} OR {{keys_changed}}) AND NOT {{followed}} THEN
    INSERT INTO superduper._changes (listener_id, pk) VALUES ({{listener_id}}, {{pk_json_new}});
  END IF;
  PERFORM superduper._wake({{listener_id}});
  RETURN NULL;
END
{{q}};

CREATE TRIGGER {{trg_update}} AFTER UPDATE ON {{source}}
FOR EACH ROW WHEN {{update_when}} EXECUTE FUNCTION {{fn_update}}();
