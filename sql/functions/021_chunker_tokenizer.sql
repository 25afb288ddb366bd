-- Chunkers that count tokens ("unit": "tokens") count with the tokenizer of the
-- model they name in config.tokenizer, usually the model that embeds their
-- chunks, so that a chunk of size 256 is 256 tokens as that model counts them.
--
-- Where the tokenizer comes from, and why: apply copies the hashes of the named
-- model's stored tokenizer.json and tokenizer_config.json into the chunker's
-- config (config.tokenizer_files), rather than the sidecar looking the model up
-- when it loads the chunker. So
--  * a chunker naming no model, an unknown one, or one without a stored
--    tokenizer fails here, at apply time, not on its first row;
--  * the tokenizer's files are part of the chunker's spec, hence of its hash:
--    a new tokenizer is a new chunker version whose chunks are recomputed,
--    never chunks cut by one tokenizer kept beside chunks cut by another;
--  * a sidecar needs only the artifacts, as for any stored model (its runtime
--    context stays fetchArtifact), and counts with exactly the model's bytes.
-- When the named model is applied again, superduper._apply_model applies its
-- chunkers again too, so that they follow its tokenizer.
CREATE OR REPLACE FUNCTION superduper._chunker_tokenizer(p_chunker text, p_config jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_unit text := coalesce(p_config ->> 'unit', 'characters');
  v_tokenizer jsonb := p_config -> 'tokenizer';
  v_name text;
  v_files jsonb;
  v_missing text[];
BEGIN
  IF v_unit <> 'tokens' THEN
    IF p_config ? 'tokenizer' OR p_config ? 'tokenizer_files' THEN
      RAISE EXCEPTION 'superduper: chunker "%": tokenizer is used only with unit "tokens" (unit is "%")', p_chunker, v_unit
        USING HINT = 'Give "unit": "tokens" to count in that model''s tokens, or leave "tokenizer" out.';
    END IF;
    RETURN p_config;
  END IF;
  IF jsonb_typeof(v_tokenizer) IS DISTINCT FROM 'string' OR v_tokenizer #>> '{}' = '' THEN
    RAISE EXCEPTION 'superduper: chunker "%": unit "tokens" counts with a model''s tokenizer, but config.tokenizer names no model', p_chunker
      USING HINT = 'Add "tokenizer": "<model>", the name of a transformers model applied with its folder (usually the model that embeds the chunks).';
  END IF;
  v_name := v_tokenizer #>> '{}';
  SELECT config -> 'files' INTO v_files FROM superduper._models WHERE name = v_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper: chunker "%": config.tokenizer names model "%", which does not exist', p_chunker, v_name
      USING HINT = 'Apply that model first, or before the chunker in the same apply. Models with a tokenizer: '
        || coalesce((SELECT string_agg(quote_literal(name), ', ' ORDER BY name) FROM superduper._models
                     WHERE jsonb_typeof(config -> 'files') = 'object' AND config -> 'files' ? 'tokenizer.json'), '(none)') || '.';
  END IF;
  SELECT array_agg(f ORDER BY f) INTO v_missing
  FROM unnest(ARRAY['tokenizer.json', 'tokenizer_config.json']) AS f
  WHERE jsonb_typeof(v_files) IS DISTINCT FROM 'object' OR jsonb_typeof(v_files -> f) IS DISTINCT FROM 'string';
  IF v_missing IS NOT NULL THEN
    RAISE EXCEPTION 'superduper: chunker "%": model "%" has no stored tokenizer (its stored files lack %)', p_chunker, v_name, array_to_string(v_missing, ' and ')
      USING HINT = 'Name a transformers model applied from a folder with tokenizer.json and tokenizer_config.json (transformersModel({ path })); '
        || 'a hub model (model_id) or a model of another runtime stores no tokenizer.';
  END IF;
  -- Whatever tokenizer_files the spec held (say, exported from another
  -- database) is replaced by the files of the model as it is here.
  RETURN p_config || jsonb_build_object('tokenizer_files', jsonb_build_object(
    'tokenizer.json', v_files -> 'tokenizer.json', 'tokenizer_config.json', v_files -> 'tokenizer_config.json'));
END
$$;
