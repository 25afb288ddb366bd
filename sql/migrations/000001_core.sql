-- Core registry, queue and bookkeeping tables.
--
-- Tables are private (leading underscore). The public interface is the views and
-- functions in sql/functions/, which are recreated on every install.

CREATE TABLE superduper._artifacts (
  sha256     text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  bytes      bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE superduper._artifacts IS
  'Model files (ONNX graphs, tokenizers, ...) stored by content hash, so every sidecar on every machine loads the same bytes.';

CREATE TABLE superduper._models (
  name       text PRIMARY KEY CHECK (name <> '' AND length(name) <= 63),
  runtime    text NOT NULL,
  config     jsonb NOT NULL DEFAULT '{}',
  output     jsonb NOT NULL,
  artifact   text REFERENCES superduper._artifacts (sha256),
  spec       jsonb NOT NULL,
  spec_hash  text NOT NULL,
  version    integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per listener *version*. A listener has one 'current' version, and while a
-- changed spec is being recomputed also one 'building' version; the building one is
-- promoted (its outputs table renamed to the stable name) once its backfill is done.
CREATE TABLE superduper._listeners (
  id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name           text NOT NULL,
  version        integer NOT NULL,
  state          text NOT NULL CHECK (state IN ('current', 'building')),
  model          text NOT NULL REFERENCES superduper._models (name),
  source         regclass NOT NULL,
  source_schema  text NOT NULL,
  source_table   text NOT NULL,
  keys           text[] NOT NULL,
  key_types      text[] NOT NULL,
  pk             text[] NOT NULL,
  pk_types       text[] NOT NULL,
  filter         text,
  output_table   text NOT NULL,
  output_type    text NOT NULL,
  settings       jsonb NOT NULL DEFAULT '{}',
  spec           jsonb NOT NULL,
  spec_hash      text NOT NULL,
  backfill_total bigint NOT NULL DEFAULT 0,
  backfill_at    timestamptz,
  frozen         boolean NOT NULL DEFAULT false,  -- kept, no longer maintained (see _backfill_finished)
  error          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (name, version)
);
CREATE UNIQUE INDEX _listeners_one_current ON superduper._listeners (name) WHERE state = 'current';
CREATE UNIQUE INDEX _listeners_one_building ON superduper._listeners (name) WHERE state = 'building';

-- Queue entries get ids from this sequence when the change log is drained into
-- the queue. Drains run one at a time, and a row's second change cannot commit
-- before its first (it waits for the row lock), so the ids of one row's changes
-- grow in the order the changes happened: an id is a version stamp.
CREATE SEQUENCE superduper._change_id;

-- The change log: what triggers append to, in the writer's transaction. No
-- index and no sequence on purpose: each costs the writer several percent of an
-- INSERT's throughput (measured with pgbench, see docs/benchmarks.md). Sidecars
-- move its rows into the indexed queue (superduper._drain), coalescing repeated
-- changes of a row.
CREATE TABLE superduper._changes (
  listener_id integer NOT NULL,
  pk          jsonb NOT NULL,
  at          timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000);

-- Any role that writes to a source table runs its insert trigger, which appends
-- here. An entry only makes a sidecar look at a row again.
GRANT USAGE ON SCHEMA superduper TO PUBLIC;
GRANT INSERT ON superduper._changes TO PUBLIC;

-- Changed rows waiting for a sidecar, indexed for claiming.
CREATE TABLE superduper._queue (
  listener_id  integer NOT NULL,
  pk           jsonb NOT NULL,
  id           bigint NOT NULL DEFAULT nextval('superduper._change_id'),
  enqueued_at  timestamptz NOT NULL DEFAULT now(),
  attempts     integer NOT NULL DEFAULT 0,
  run_after    timestamptz,
  leased_until timestamptz,
  leased_by    text,
  last_error   text,
  PRIMARY KEY (listener_id, pk, id)
);

-- Existing rows of a source table are computed in ranges of its primary key,
-- handed out one at a time from a cursor, instead of queueing every existing row
-- (which would cost a write per row up front, under the table's trigger lock).
-- The cursor is the first key not yet handed out; it goes when none is left.
CREATE TABLE superduper._backfill_cursor (
  listener_id integer PRIMARY KEY,
  next        jsonb NOT NULL,
  chunks      integer NOT NULL DEFAULT 0,  -- ranges handed out so far
  total       bigint NOT NULL,             -- rows to compute when the backfill began
  handed_out  bigint NOT NULL DEFAULT 0    -- rows in ranges handed out so far
);

-- Ranges handed out and not yet written. A range whose lease runs out (its
-- sidecar died) is handed out again.
CREATE TABLE superduper._backfill (
  listener_id  integer NOT NULL,
  chunk        integer NOT NULL,
  lo           jsonb NOT NULL,   -- first key of the range
  hi           jsonb NOT NULL,   -- last key of the range
  rows         bigint NOT NULL,
  attempts     integer NOT NULL DEFAULT 0,
  leased_until timestamptz,
  leased_by    text,
  PRIMARY KEY (listener_id, chunk)
);

-- Rows whose model call failed max_attempts times. They block nothing; a change
-- to the row, or superduper.retry(), queues them again.
CREATE TABLE superduper._failures (
  listener_id     integer NOT NULL,
  pk              jsonb NOT NULL,
  attempts        integer NOT NULL,
  error           text NOT NULL,
  first_failed_at timestamptz NOT NULL DEFAULT now(),
  failed_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (listener_id, pk)
);

-- Sidecars announce themselves here, for status and so that the claims of one
-- that stopped answering can be released by the others.
CREATE TABLE superduper._workers (
  id         text PRIMARY KEY,
  hostname   text NOT NULL,
  pid        integer NOT NULL,
  functions  text[] NOT NULL DEFAULT '{}',
  sleeping   boolean NOT NULL DEFAULT false,  -- for display only
  started_at timestamptz NOT NULL DEFAULT now(),
  seen_at    timestamptz NOT NULL DEFAULT now()
);

-- Per-listener SQL (triggers, claim and write functions) is rendered from these
-- templates; the installer refreshes them from triggers/ and sql/templates/.
CREATE TABLE superduper._templates (
  name text PRIMARY KEY,
  body text NOT NULL
);
