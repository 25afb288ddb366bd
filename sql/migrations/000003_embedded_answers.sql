-- Answers to model calls made from SQL where there is no dblink (the embedded
-- database): superduper.embed / predict / like raise SQLSTATE SDM01 naming the
-- call; the process hosting the database computes it, stores it here (embeddings
-- go to _embed_cache instead) and runs the statement again, which now finds it.
-- Failures are stored too, so that the statement's second run raises the model's
-- error. Rows older than ten minutes are removed as new ones arrive.
CREATE TABLE superduper._answers (
  model      text NOT NULL,
  model_hash text NOT NULL,
  kind       text NOT NULL CHECK (kind IN ('embed', 'predict')),
  input_md5  text NOT NULL,
  result     jsonb,
  error      text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, kind, input_md5, model_hash)
);
