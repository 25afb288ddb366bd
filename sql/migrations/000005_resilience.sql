-- Sidecars say what they are doing, how often they check in (so that one that
-- stopped checking in shows as not answering), and the outages they came through.
ALTER TABLE superduper._workers
  ADD COLUMN state text NOT NULL DEFAULT 'working',
  ADD COLUMN state_since timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN heartbeat interval NOT NULL DEFAULT interval '2 seconds',
  ADD COLUMN code_version text,
  ADD COLUMN outages integer NOT NULL DEFAULT 0,
  ADD COLUMN last_outage_at timestamptz,
  ADD COLUMN last_outage interval,
  ADD COLUMN last_outage_reason text;

-- A failure remembers the value that failed (its stamp: the queue id it was
-- read under, see superduper._change_id) and when that change was made:
--   * an output computed from an earlier value is withdrawn when the current
--     value fails for good (withdrawn says so), and an older computation that
--     finishes later cannot bring it back or clear the failure;
--   * superduper.wait_for() reports the failures of the changes it waited for.
ALTER TABLE superduper._failures
  ADD COLUMN stamp bigint NOT NULL DEFAULT 0,
  ADD COLUMN changed_at timestamptz,
  ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;
UPDATE superduper._failures SET changed_at = first_failed_at;
ALTER TABLE superduper._failures ALTER COLUMN changed_at SET NOT NULL, ALTER COLUMN changed_at SET DEFAULT now();

-- superduper.wait_for() asks "is anything queued from before this moment?" on
-- every look; without this it would read every entry queued since.
CREATE INDEX _queue_age ON superduper._queue (listener_id, enqueued_at);

-- superduper.status gains a column (withdrawn): its function's result type
-- changes, which CREATE OR REPLACE cannot do. Both are made again by the install.
DROP VIEW IF EXISTS superduper.status;
DROP FUNCTION IF EXISTS superduper._status(boolean);
