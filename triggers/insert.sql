-- BEFORE INSERT, per row: log the new row's key for the sidecars.
--
-- The hot path of every write, so it is as lean as measured to be possible in
-- PL/pgSQL: no SECURITY DEFINER and no SET clause (each costs ~5% of insert
-- throughput; the writer appends to a log every role may append to), an
-- unindexed append-only log, and a lock probe instead of a table lookup to see
-- whether a sidecar sleeps (see superduper._wake). BEFORE, not AFTER: ~8% cheaper;
-- the trigger's name sorts after the table's own triggers, so the key it logs is
-- the final one. A listener chained on another's outputs lets the rows that
-- listener's backfill writes pass (follow_skip, see
-- sql/functions/035_backfill_follow.sql); for any other it is empty.
CREATE FUNCTION {{fn_insert}}() RETURNS trigger
LANGUAGE plpgsql
AS {{q}}
BEGIN
  {{follow_skip}}
  {{insert_when}}
  INSERT INTO superduper._changes (listener_id, pk) VALUES ({{listener_id}}, {{pk_json_new}});
  IF NOT pg_catalog.pg_try_advisory_xact_lock_shared(@{locks.namespace}, @{locks.sleep}) THEN
    PERFORM pg_catalog.pg_notify('@{notify.work.channel}', '{{listener_id}}');
  END IF;
  RETURN NEW;
END
{{q}};

CREATE TRIGGER {{trg_insert}} BEFORE INSERT ON {{source}}
FOR EACH ROW EXECUTE FUNCTION {{fn_insert}}();
