-- Run before any migration, on every install path: the ledger of applied
-- migrations. Idempotent. (The installer creates the schema first; CREATE
-- EXTENSION creates it from the control file.)

CREATE TABLE IF NOT EXISTS superduper._migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  sha256     text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- Which version of the code last installed the functions; an older code refuses
-- to overwrite them.
CREATE TABLE IF NOT EXISTS superduper._meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);
