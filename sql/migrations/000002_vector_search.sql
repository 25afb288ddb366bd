-- Vector indexes, and model calls made from SQL (superduper.embed / predict /
-- like) that a sidecar answers.

CREATE TABLE superduper._vector_indexes (
  id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL UNIQUE CHECK (name <> '' AND octet_length(name) <= 48),
  listener    text NOT NULL,      -- the indexing listener (its outputs are the vectors)
  query_model text NOT NULL,      -- embeds queries (the listener's model, or a compatible one)
  measure     text NOT NULL CHECK (measure IN ('cosine', 'l2', 'ip')),
  options     jsonb NOT NULL,     -- {"m": .., "ef_construction": .., "ef_search": ..}
  spec        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Requests from SQL sessions to sidecars: superduper.embed() and predict() insert
-- one (through a dblink connection, so that it commits at once), NOTIFY, and poll
-- it until a sidecar has written the result.
CREATE TABLE superduper._requests (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  model       text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('embed', 'predict')),
  input       jsonb NOT NULL,
  status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
  result      jsonb,
  error       text,
  claimed_by  text,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  done_at     timestamptz
);
CREATE INDEX _requests_pending ON superduper._requests (id) WHERE status = 'pending';

-- Query embeddings, so that a repeated query needs no round trip. Keyed by the
-- model's spec hash (a new model version misses) and the input's MD5; bounded by
-- superduper.embed_cache_size, oldest entries evicted first.
CREATE TABLE superduper._embed_cache (
  model      text NOT NULL,
  model_hash text NOT NULL,
  input_md5  text NOT NULL,
  embedding  real[] NOT NULL,     -- cast to vector where used (pgvector may live in any schema)
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, input_md5, model_hash)
);
CREATE INDEX _embed_cache_age ON superduper._embed_cache (created_at);

-- One search result, as superduper.like() returns it.
CREATE TYPE superduper._hit AS (id text, key text[], score double precision);
