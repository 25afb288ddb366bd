-- superduper._request() where there is no dblink, rendered at install by
-- sql/functions/080_model_requests.sql instead of request_dblink.sql.
--
-- Without dblink no statement can wait for a sidecar. A process hosting the
-- database in-process (the embedded PGlite) answers instead: the call raises
-- @{sqlstates.model_call} with the call in DETAIL, the host stores the answer
-- (superduper._store_answer) and runs the statement again, which finds it here.
-- Anywhere else the error says what to install.
CREATE OR REPLACE FUNCTION superduper._request(p_model text, p_kind text, p_input jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS {{q}}
DECLARE
  v_answer superduper._answers;
BEGIN
  SELECT a.* INTO v_answer FROM superduper._answers a
  JOIN superduper._models m ON m.name = a.model AND m.spec_hash = a.model_hash
  WHERE a.model = p_model AND a.kind = p_kind AND a.input_md5 = md5(p_input::text);
  IF FOUND THEN
    IF v_answer.error IS NOT NULL THEN
      RAISE EXCEPTION 'superduper: model "%" failed: %', p_model, v_answer.error;
    END IF;
    RETURN v_answer.result;
  END IF;
  RAISE EXCEPTION 'superduper: model "%" cannot be called from SQL here: this database has no dblink, and no superduper process hosting it answered', p_model
    USING ERRCODE = '@{sqlstates.model_call}',
          DETAIL = jsonb_build_object('model', p_model, 'kind', p_kind, 'input', p_input)::text,
          HINT = 'On a PostgreSQL server: CREATE EXTENSION dblink; (it ships with contrib), then run "npx superduper install" again '
                 || '(installed with CREATE EXTENSION superduper: run the superduper-functions.sql script instead, see docs/sql.md). '
                 || 'On the embedded database: query it while "npx superduper serve" (or your process) has it open. '
                 || 'Or compute embeddings in your application and pass vectors to superduper.like.';
END
{{q}};
