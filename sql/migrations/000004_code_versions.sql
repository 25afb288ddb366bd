-- Each rendering of a listener version's code gets the next number, written
-- into the code. A sidecar's call that waited on superduper._lock_listeners
-- while the code was replaced (a filter changed, a version promoted) finds its
-- number stale and raises SQLSTATE SDR01 instead of running the old code; the
-- sidecar calls again and reaches the new code.
ALTER TABLE superduper._listeners ADD COLUMN code_version integer NOT NULL DEFAULT 0;
