-- A backfill range is written at once, when all its rows are computed: with a
-- slow model, a thousand rows take minutes and the outputs count stands still.
-- The sidecar computing a range now says how many of its rows it has computed
-- (superduper._backfill_progress, about once a second), and superduper.status
-- shows their sum per listener as "computing".
ALTER TABLE superduper._backfill ADD COLUMN computed bigint NOT NULL DEFAULT 0;

-- superduper.status gains that column: its function's result type changes,
-- which CREATE OR REPLACE cannot do. Both are made again by the install.
DROP VIEW IF EXISTS superduper.status;
DROP FUNCTION IF EXISTS superduper._status(boolean);
