-- A listener chained on another's outputs follows that listener's backfill
-- instead of taking each row it writes through the change log and the queue
-- (sql/functions/035_backfill_follow.sql). When every row below the upstream's
-- low water has been handed out, its cursor waits: waits_for is the upstream
-- listener, waits_below the low water it saw. It has work again once the low
-- water moves (the upstream wrote its lowest range, which also wakes sidecars).
ALTER TABLE superduper._backfill_cursor ADD COLUMN waits_for integer, ADD COLUMN waits_below jsonb;
