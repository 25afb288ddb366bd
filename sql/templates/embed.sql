-- superduper.embed(), rendered at install by sql/functions/085_model_calls.sql
-- with {{vector_type}}, pgvector's type in whatever schema it lives in (its
-- signature names the type).
--
-- The embedding of p_input by model p_model. STABLE, so that
--   ORDER BY embedding <=> superduper.embed('m', 'text') LIMIT 10
-- embeds once and can use an HNSW index.
CREATE OR REPLACE FUNCTION superduper.embed(p_model text, p_input text)
RETURNS {{vector_type}}
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS {{q}}SELECT superduper._embed(p_model, p_input)::{{vector_type}}{{q}};
