-- A listener version whose model returns a list per row (its output declares
-- "flatten": true) writes one output row per element, keyed by the source's
-- primary key and the element's _position. Kept on the version, not read from
-- the model, because a frozen version keeps its table's shape when its model
-- changes.
ALTER TABLE superduper._listeners ADD COLUMN flatten boolean NOT NULL DEFAULT false;

-- Answers of superduper.rag(), by (model, model version, prompt): the same
-- question over the same context asks the LLM once. Like _embed_cache, a row
-- from an older version of the model is never read (the version is in the key).
CREATE TABLE superduper._answer_cache (
  model       text NOT NULL,
  model_hash  text NOT NULL,
  prompt_md5  text NOT NULL,
  answer      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, model_hash, prompt_md5)
);
