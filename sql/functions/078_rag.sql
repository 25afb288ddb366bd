-- Retrieval-augmented generation from SQL: superduper.rag() searches a vector
-- index (hybrid() when it has full-text search, like() otherwise), puts the
-- best passages into a prompt within a context budget, asks an LLM model
-- through a sidecar like any model call from SQL, and returns the answer with
-- the keys of the passages it was given. superduper.rag_context() is its first
-- half (the prompt and the sources, no LLM call), for callers that run the LLM
-- themselves (the TypeScript client streams it). Answers are cached by (model
-- version, prompt).

-- Earlier development builds had rag() and rag_context() without p_rerank:
-- dropped, so that a call naming its arguments is not ambiguous between two.
DROP FUNCTION IF EXISTS superduper.rag_context(text, text, integer, text, jsonb, integer);
DROP FUNCTION IF EXISTS superduper.rag(text, text, text, integer, text, jsonb, integer);
DROP FUNCTION IF EXISTS superduper._rag_index(text, integer);

-- The prompt rag() uses when given none: {context} is the numbered passages,
-- {question} the question.
CREATE OR REPLACE FUNCTION superduper.rag_default_prompt()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT 'Answer the question using only the numbered passages below, and cite the passages you used by their number, like [1]. '
         || E'If the passages do not hold the answer, say that you do not know.\n\n'
         || E'Passages:\n{context}\n\nQuestion: {question}\nAnswer:'
$$;

-- The prompt for a question and the passages in it, by rank, as
-- [{"n": 1, "key": [...], "score": ..., "tokens": ...}, ...]. Passages are added
-- while the context budget (in tokens, estimated as characters / 4: the LLM's
-- own tokenizer is not in the database) allows; the first is cut to the budget
-- if it alone exceeds it. Runs with the caller's rights: the caller needs
-- SELECT on the passages' table, as for like().
CREATE OR REPLACE FUNCTION superduper.rag_context(p_index text, p_question text, p_k integer DEFAULT 5, p_prompt text DEFAULT NULL,
                                                  p_filter jsonb DEFAULT NULL, p_context_tokens integer DEFAULT 2000, p_rerank text DEFAULT NULL)
RETURNS TABLE (prompt text, sources jsonb)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  i record;
  v_template text := coalesce(p_prompt, superduper.rag_default_prompt());
  v_hits jsonb;
  v_passages jsonb;
  v_context text := '';
  v_sources jsonb := '[]';
  v_used integer := 0;
  v_passage text;
  v_tokens integer;
  v_n integer := 0;
BEGIN
  IF p_question IS NULL OR pg_catalog.btrim(p_question) = '' THEN
    RAISE EXCEPTION 'superduper.rag: index "%": the question is %', p_index, CASE WHEN p_question IS NULL THEN 'NULL' ELSE 'empty' END;
  END IF;
  IF pg_catalog.strpos(v_template, '{context}') = 0 OR pg_catalog.strpos(v_template, '{question}') = 0 THEN
    RAISE EXCEPTION 'superduper.rag: index "%": the prompt must hold {context} and {question}', p_index
      USING HINT = 'For example: ''Answer from these passages:\n{context}\n\nQuestion: {question}''.';
  END IF;
  IF p_context_tokens IS NULL OR p_context_tokens < 1 THEN
    RAISE EXCEPTION 'superduper.rag: index "%": the context budget must be a positive number of tokens, not %', p_index, coalesce(p_context_tokens::text, 'NULL');
  END IF;
  SELECT * INTO i FROM superduper._passage_source(p_index, p_k);

  IF p_rerank IS NOT NULL THEN
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('key', h.key, 'score', h.score) ORDER BY h.score DESC, h.key) INTO v_hits
    FROM superduper.rerank(p_index, p_question, p_rerank, p_k, p_filter) AS h;
  ELSE
    v_hits := superduper._search_hits(p_index, p_question, p_k, p_filter, i.full_text);
  END IF;

  -- The passages' text, in rank order, in one statement.
  v_passages := superduper._passages(p_index, v_hits);

  FOR v_passage, v_hits IN
    SELECT e ->> 'text', e FROM pg_catalog.jsonb_array_elements(coalesce(v_passages, '[]')) AS e
  LOOP
    v_tokens := ceil(pg_catalog.length(v_passage) / 4.0);
    IF v_used + v_tokens > p_context_tokens THEN
      EXIT WHEN v_n > 0;
      v_passage := pg_catalog.left(v_passage, p_context_tokens * 4);
      v_tokens := p_context_tokens;
    END IF;
    v_n := v_n + 1;
    v_used := v_used + v_tokens;
    v_context := v_context || CASE WHEN v_n > 1 THEN E'\n\n' ELSE '' END || '[' || v_n || '] ' || v_passage;
    v_sources := v_sources || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
      'n', v_n, 'key', v_hits -> 'key', 'score', v_hits -> 'score', 'tokens', v_tokens));
  END LOOP;

  -- One pass, so that a passage holding "{question}" is not expanded.
  prompt := pg_catalog.replace(pg_catalog.replace(v_template, '{question}', E'\u0001q\u0001'), '{context}', E'\u0001c\u0001');
  prompt := pg_catalog.replace(pg_catalog.replace(prompt, E'\u0001c\u0001', v_context), E'\u0001q\u0001', p_question);
  sources := v_sources;
  RETURN NEXT;
END
$$;

-- The answer to a question from the passages of a vector index, by an LLM
-- model (any model that takes text and outputs text: openai, anthropic, a
-- self-hosted OpenAI-compatible server, a function model), with the passages
-- it was given (each marked "cited" if the answer names it, as [n]).
--   SELECT answer, sources FROM superduper.rag('chunk_index', 'How long are backups kept?', 'llm');
CREATE OR REPLACE FUNCTION superduper.rag(p_index text, p_question text, p_llm text, p_k integer DEFAULT 5, p_prompt text DEFAULT NULL,
                                          p_filter jsonb DEFAULT NULL, p_context_tokens integer DEFAULT 2000, p_rerank text DEFAULT NULL)
RETURNS TABLE (answer text, sources jsonb, cached boolean)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  c record;
  v_result jsonb;
  v_version text;
BEGIN
  v_version := superduper._rag_llm_version(p_llm);
  SELECT * INTO c FROM superduper.rag_context(p_index, p_question, p_k, p_prompt, p_filter, p_context_tokens, p_rerank);
  answer := superduper._rag_cached(p_llm, c.prompt);
  cached := answer IS NOT NULL;
  IF NOT cached THEN
    v_result := superduper._request(p_llm, 'predict', pg_catalog.to_jsonb(c.prompt));
    answer := CASE WHEN pg_catalog.jsonb_typeof(v_result) = 'string' THEN v_result #>> '{}' ELSE v_result::text END;
    PERFORM superduper._rag_store(p_llm, c.prompt, answer, v_version);
  END IF;
  SELECT coalesce(pg_catalog.jsonb_agg(s || pg_catalog.jsonb_build_object('cited', pg_catalog.strpos(answer, '[' || (s ->> 'n') || ']') > 0)
                                       ORDER BY (s ->> 'n')::integer), '[]')
  INTO sources FROM pg_catalog.jsonb_array_elements(c.sources) AS s;
  RETURN NEXT;
END
$$;

-- Checks that a model can answer a prompt, and returns its version (spec
-- hash): an answer is cached under the version that gave it (registry only,
-- owner's rights).
CREATE OR REPLACE FUNCTION superduper._rag_llm_version(p_llm text)
RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  m superduper._models := superduper._callable_model('rag', p_llm);
BEGIN
  IF m.output ->> 'type' NOT IN ('text', 'jsonb') OR (m.output ->> 'flatten')::boolean THEN
    RAISE EXCEPTION 'superduper.rag: model "%" outputs %, not text', p_llm, superduper._output_sql_type(m.name, m.output)
      USING HINT = 'Name an LLM model: one that takes a prompt and returns text (openai, anthropic, or a function model).';
  END IF;
  RETURN m.spec_hash;
END
$$;

CREATE OR REPLACE FUNCTION superduper._rag_llm(p_llm text)
RETURNS void
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT superduper._rag_llm_version(p_llm) $$;

CREATE OR REPLACE FUNCTION superduper._rag_cached(p_llm text, p_prompt text)
RETURNS text
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.answer FROM superduper._answer_cache c JOIN superduper._models m ON m.name = c.model AND m.spec_hash = c.model_hash
  WHERE c.model = p_llm AND c.prompt_md5 = md5(p_prompt)
$$;

-- Keeps an answer; the cache stays near its bound, the setting
-- superduper.answer_cache_size (default 10000; checked on about one store in 20).
DROP FUNCTION IF EXISTS superduper._rag_store(text, text, text);
-- p_version is the model version that answered: when the model was applied
-- again while it answered, the answer is not kept (it would be filed under
-- the new version, and served as its answer).
CREATE OR REPLACE FUNCTION superduper._rag_store(p_llm text, p_prompt text, p_answer text, p_version text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_excess bigint;
BEGIN
  INSERT INTO superduper._answer_cache (model, model_hash, prompt_md5, answer)
  SELECT m.name, m.spec_hash, md5(p_prompt), p_answer FROM superduper._models m WHERE m.name = p_llm AND m.spec_hash = p_version
  ON CONFLICT DO NOTHING;
  IF random() < 0.05 THEN
    SELECT count(*) - coalesce(nullif(current_setting('superduper.answer_cache_size', true), '')::bigint, 10000)
    INTO v_excess FROM superduper._answer_cache;
    IF v_excess > 0 THEN
      DELETE FROM superduper._answer_cache c
      USING (SELECT model, model_hash, prompt_md5 FROM superduper._answer_cache ORDER BY created_at LIMIT v_excess) AS old
      WHERE c.model = old.model AND c.model_hash = old.model_hash AND c.prompt_md5 = old.prompt_md5;
    END IF;
  END IF;
END
$$;
