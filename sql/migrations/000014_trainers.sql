-- Trainers (sql/functions/047_trainers.sql): a model fitted on the rows of a
-- query, each fit a run with its own stored artifact and metrics, the deployed
-- one chosen by a strategy.
CREATE TABLE superduper._trainers (
  name         text PRIMARY KEY CHECK (name <> '' AND octet_length(name) <= 63),
  -- The model it trains (superduper._models, runtime 'trained'): its artifact
  -- is the deployed run's.
  model        text NOT NULL UNIQUE,
  source       regclass NOT NULL,
  spec         jsonb NOT NULL,
  spec_version integer NOT NULL DEFAULT 1,
  -- For retraining after N changed rows: the tables the training query reads,
  -- and their changed rows (pg_stat_user_tables: inserted + updated + deleted)
  -- counted when the last run was queued.
  watched      regclass[] NOT NULL DEFAULT '{}',
  changes_seen bigint,
  -- A run deployed by hand as pinned (or by a rollback): kept deployed, whatever
  -- later runs score, until a deploy by strategy unpins it.
  pinned_run   integer,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE superduper._training_runs (
  trainer       text NOT NULL REFERENCES superduper._trainers (name) ON DELETE CASCADE,
  run           integer NOT NULL,
  -- Why it ran: the trainer was applied (or changed), superduper.train(), a
  -- schedule's firing, or enough changed rows.
  reason        text NOT NULL CHECK (reason IN ('applied', 'on_demand', 'schedule', 'changed_rows')),
  state         text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
  -- The trainer's spec as it was when the run was queued: what it fits.
  spec          jsonb NOT NULL,
  claimed_by    text,
  lease_until   timestamptz,
  attempts      integer NOT NULL DEFAULT 0,
  artifact      text REFERENCES superduper._artifacts (sha256),
  -- The model output this run's artifact gives ({"type": "text"}, ...).
  output        jsonb,
  metrics       jsonb,
  rows          bigint,
  trained_rows  bigint,
  held_out_rows bigint,
  -- The snapshot (pg_current_snapshot()) the rows were read in.
  snapshot      text,
  fit_seconds   float8,
  seconds       float8,
  -- Whether it was deployed when it finished, and why (or why not).
  decision      text,
  error         text,
  queued_at     timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz,
  PRIMARY KEY (trainer, run)
);
-- At most one run of a trainer fits at a time, and one more waits.
CREATE UNIQUE INDEX _training_runs_one_running ON superduper._training_runs (trainer) WHERE state = 'running';
CREATE UNIQUE INDEX _training_runs_one_queued ON superduper._training_runs (trainer) WHERE state = 'queued';

-- Every deployment, newest last: a rollback goes back to the one before.
CREATE TABLE superduper._training_deployments (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  trainer        text NOT NULL,
  run            integer NOT NULL,
  strategy       text NOT NULL CHECK (strategy IN ('most_recent', 'best_score', 'pinned', 'rollback')),
  model_version  integer NOT NULL,
  deployed_at    timestamptz NOT NULL DEFAULT now(),
  rolled_back_at timestamptz,
  FOREIGN KEY (trainer, run) REFERENCES superduper._training_runs (trainer, run) ON DELETE CASCADE
);
