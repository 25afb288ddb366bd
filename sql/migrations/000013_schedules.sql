-- Schedules (sql/functions/046_schedules.sql): a cron expression and an action,
-- fired by sidecars, each due time run exactly once however many sidecars run.
CREATE TABLE superduper._schedules (
  name         text PRIMARY KEY CHECK (name <> '' AND octet_length(name) <= 63),
  cron         text NOT NULL,
  timezone     text NOT NULL,
  -- A firing not claimed within grace of its due time was missed: 'skip' records
  -- it as skipped, 'catch_up_once' runs once for all the missed ones.
  missed       text NOT NULL CHECK (missed IN ('skip', 'catch_up_once')),
  grace        interval NOT NULL,
  -- What a firing does: {"refresh": "<listener>"} computes every output of the listener again.
  action       jsonb NOT NULL,
  spec         jsonb NOT NULL,
  spec_version integer NOT NULL DEFAULT 1,
  -- The next due time, computed by a sidecar from the cron expression (cron-parser);
  -- NULL until one has, or when the expression does not parse (error says why).
  next_at      timestamptz,
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per firing: its due time is the key, so two sidecars cannot both run it.
CREATE TABLE superduper._schedule_runs (
  schedule     text NOT NULL REFERENCES superduper._schedules (name) ON DELETE CASCADE,
  due_at       timestamptz NOT NULL,
  state        text NOT NULL CHECK (state IN ('running', 'done', 'failed', 'skipped')),
  claimed_by   text,
  lease_until  timestamptz,
  attempts     integer NOT NULL DEFAULT 1,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  -- What it did ({"queued": n} for a refresh), or why it was skipped.
  result       jsonb,
  error        text,
  PRIMARY KEY (schedule, due_at)
);
