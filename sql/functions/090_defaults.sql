-- Components every database starts with. Applied only if missing, so a user's
-- changes to them are kept (and a removed one comes back with the next install).

-- The default text embedder (runtime text-embedder: Universal Sentence Encoder
-- lite, 512 dimensions, shipped in the sidecar's npm dependencies), used by every
-- listener whose spec names no model.
SELECT superduper._apply_model('{
  "type": "model",
  "name": "@{listeners.default_model}",
  "runtime": "text-embedder",
  "output": {"type": "vector", "dim": 512},
  "config": {"model": "universal-sentence-encoder-lite"}
}', NULL)
WHERE NOT EXISTS (SELECT 1 FROM superduper._models WHERE name = '@{listeners.default_model}');
