-- Trainers: a model fitted on the rows of a query, kept current.
--
--   SELECT superduper.apply('{"type": "trainer", "name": "churn", "table": "customers",
--     "features": ["age", "monthly_spend", {"column": "plan", "encoding": "one_hot"}],
--     "target": "churned", "task": "classification", "seed": 7,
--     "deploy": {"strategy": "best_score", "metric": "f1"}, "retrain": {"after_rows": 1000}}');
--
-- Applying a trainer registers its model (runtime 'trained', named as the
-- trainer unless "model" says otherwise) and queues its first run. A sidecar
-- claims the run (as queue work is claimed: one sidecar, a lease, taken over
-- when that sidecar stops answering), reads the rows in one snapshot, fits in a
-- worker thread (src/training/), and records the run with its artifact (stored
-- in superduper._artifacts like any model file), metrics, row count, snapshot
-- and duration (superduper.training_runs). Whether the run is deployed is the
-- trainer's deploy strategy: most_recent, best_score on a metric, or pinned;
-- a run scoring worse than the deployed one on the deploy metric is kept, not
-- deployed (the gate). Deploying applies the model again with the run's
-- artifact: listeners using it rebuild as a new version while the current one
-- keeps serving (_apply_model), and superduper.predict answers with it.
-- Retraining: superduper.train(name), a schedule with {"train": name}, or
-- "retrain": {"after_rows": N} (counted from pg_stat_user_tables, so that
-- writers pay nothing for it).

SELECT superduper._component_type('trainer', 'trainer', '_trainers', 25, @{spec_versions.trainer});
-- How and when it deploys and retrains, not what it fits.
SELECT superduper._component_non_breaking('trainer', ARRAY[@{identity.trainer}]);

-- Per task: the metrics a run reports, the default deploy metric, the default algorithm.
CREATE OR REPLACE FUNCTION superduper._training_task(p_task text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE p_task
    WHEN 'classification' THEN '{"metrics": ["accuracy", "f1", "roc_auc"], "metric": "f1", "algorithm": "logistic_regression", "algorithms": ["logistic_regression", "neural_network"]}'::jsonb
    WHEN 'regression' THEN '{"metrics": ["r2", "mae"], "metric": "r2", "algorithm": "linear_regression", "algorithms": ["linear_regression"]}'::jsonb
    WHEN 'clustering' THEN '{"metrics": ["silhouette"], "metric": "silhouette", "algorithm": "kmeans", "algorithms": ["kmeans"]}'::jsonb
  END
$$;

-- Per algorithm: its hyperparameters, each {"min", "max", "integer", "required"}
-- ("min" excluded when "positive"). Their defaults are src/training/types.ts's.
CREATE OR REPLACE FUNCTION superduper._training_hyperparameters(p_algorithm text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE p_algorithm
    WHEN 'logistic_regression' THEN '{"epochs": {"min": 1, "max": 10000, "integer": true}, "learning_rate": {"min": 0, "max": 10, "positive": true},
                                      "batch_size": {"min": 1, "max": 100000, "integer": true}}'::jsonb
    WHEN 'neural_network' THEN '{"epochs": {"min": 1, "max": 10000, "integer": true}, "learning_rate": {"min": 0, "max": 10, "positive": true},
                                 "batch_size": {"min": 1, "max": 100000, "integer": true}, "hidden_units": {"min": 1, "max": 1024, "integer": true}}'::jsonb
    WHEN 'linear_regression' THEN '{}'::jsonb
    WHEN 'kmeans' THEN '{"k": {"min": 2, "max": 10000, "integer": true, "required": true}, "max_iterations": {"min": 1, "max": 100000, "integer": true}}'::jsonb
  END
$$;

-- Finds a relation (table, view, materialized view) a trainer reads, by its
-- unquoted name, in "schema" or else the caller's search_path.
CREATE OR REPLACE FUNCTION superduper._trainer_source(p_trainer text, p_schema text, p_table text, p_search_path text[])
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_oid oid;
  v_schemas text[] := CASE WHEN p_schema IS NOT NULL THEN ARRAY[p_schema] ELSE coalesce(p_search_path, '{}') END;
BEGIN
  IF p_table IS NULL OR p_table = '' THEN
    RAISE EXCEPTION 'superduper: trainer "%": "table" is missing', p_trainer
      USING HINT = 'The table or view whose rows it trains on.';
  END IF;
  SELECT c.oid INTO v_oid
  FROM unnest(v_schemas) WITH ORDINALITY AS s(name, ord)
  JOIN pg_namespace n ON n.nspname = s.name
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p_table
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  ORDER BY s.ord LIMIT 1;
  IF v_oid IS NULL THEN
    RAISE EXCEPTION 'superduper: trainer "%": table or view % does not exist', p_trainer,
      CASE WHEN p_schema IS NULL THEN quote_ident(p_table) ELSE superduper._qualify(p_schema, p_table) END
      USING HINT = 'Searched schemas: ' || coalesce(array_to_string(v_schemas, ', '), '(none)') || '. Give "schema" in the spec if it is elsewhere.';
  END IF;
  RETURN v_oid::regclass;
END
$$;

-- How a column of p_source becomes numbers: {"kind": number|boolean|category|vector, "dim"}.
-- p_encoding is the spec's "encoding" (one_hot, for text); p_what names it in errors.
CREATE OR REPLACE FUNCTION superduper._training_column_kind(p_trainer text, p_source regclass, p_column text, p_encoding text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type oid;
  v_typmod integer;
  v_category "char";
  v_type_name text;
BEGIN
  SELECT a.atttypid, a.atttypmod, t.typcategory, t.typname INTO v_type, v_typmod, v_category, v_type_name
  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
  WHERE a.attrelid = p_source AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper: trainer "%": % has no column %', p_trainer, p_source, quote_ident(p_column)
      USING HINT = 'Columns: ' || (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                                   WHERE attrelid = p_source AND attnum > 0 AND NOT attisdropped) || '.';
  END IF;
  IF p_encoding IS NOT NULL AND p_encoding <> 'one_hot' THEN
    RAISE EXCEPTION 'superduper: trainer "%": feature %: unknown encoding %', p_trainer, quote_ident(p_column), quote_literal(p_encoding)
      USING HINT = 'The one encoding is "one_hot": one 0/1 feature per distinct value.';
  END IF;
  IF p_encoding = 'one_hot' THEN
    IF v_category NOT IN ('S', 'E', 'B', 'N') THEN
      RAISE EXCEPTION 'superduper: trainer "%": feature %: a % column cannot be one-hot encoded', p_trainer, quote_ident(p_column), format_type(v_type, v_typmod)
        USING HINT = 'One-hot encoding takes text, enum, boolean or integer columns.';
    END IF;
    RETURN '{"kind": "category"}';
  END IF;
  IF v_type_name = 'vector' THEN
    IF v_typmod < 1 THEN
      RAISE EXCEPTION 'superduper: trainer "%": feature %: a vector column needs a fixed dimension to train on, not %', p_trainer, quote_ident(p_column), format_type(v_type, v_typmod)
        USING HINT = 'Declare it as vector(N).';
    END IF;
    RETURN jsonb_build_object('kind', 'vector', 'dim', v_typmod);
  END IF;
  IF v_category = 'N' THEN
    RETURN '{"kind": "number"}';
  END IF;
  IF v_category = 'B' THEN
    RETURN '{"kind": "boolean"}';
  END IF;
  IF v_category IN ('S', 'E') THEN
    RAISE EXCEPTION 'superduper: trainer "%": feature % is %, and a model needs numbers', p_trainer, quote_ident(p_column), format_type(v_type, v_typmod)
      USING HINT = format('Encode its values as categories: {"column": %s, "encoding": "one_hot"}.', to_jsonb(p_column));
  END IF;
  RAISE EXCEPTION 'superduper: trainer "%": feature % is %, which a model cannot train on', p_trainer, quote_ident(p_column), format_type(v_type, v_typmod)
    USING HINT = 'Features are numbers, booleans, vector(N), or text with "encoding": "one_hot"; cast others in a view.';
END
$$;

-- What a run reads and fits, from a (normalized) trainer spec: the query (each
-- feature as f0, f1, ... and the target as target), each feature's name and
-- encoding, the model output. Checked again at each run: a column may have
-- changed since the apply.
CREATE OR REPLACE FUNCTION superduper._training_plan(p_spec jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text := p_spec ->> 'name';
  v_task text := p_spec ->> 'task';
  v_source regclass := superduper._trainer_source(v_name, p_spec ->> 'schema', p_spec ->> 'table', NULL);
  v_feature jsonb;
  v_kind jsonb;
  v_select text[] := '{}';
  v_joins text := '';
  v_features jsonb := '[]';
  v_listener superduper._listeners;
  v_target_type oid;
  v_target_category "char";
  v_output jsonb;
  v_target_sql text;
  v_query text;
  i integer := 0;
BEGIN
  FOR v_feature IN SELECT value FROM jsonb_array_elements(p_spec -> 'features') LOOP
    IF v_feature ? 'listener' THEN
      -- A listener's outputs of the same rows, joined on the primary key (the
      -- transfer-learning case: a classifier on embeddings).
      SELECT * INTO v_listener FROM superduper._listeners WHERE name = v_feature ->> 'listener' AND state = 'current';
      IF NOT FOUND THEN
        RAISE EXCEPTION 'superduper: trainer "%": no listener named % for a feature', v_name, quote_literal(v_feature ->> 'listener')
          USING HINT = 'Listeners: ' || coalesce((SELECT string_agg(DISTINCT quote_literal(name), ', ') FROM superduper._listeners), '(none)');
      END IF;
      IF v_listener.source <> v_source THEN
        RAISE EXCEPTION 'superduper: trainer "%": listener "%" computes outputs of %, not of %', v_name, v_listener.name, v_listener.source, v_source
          USING HINT = 'A listener feature joins the outputs of the trainer''s own rows: train on the listener''s table.';
      END IF;
      IF v_listener.flatten OR v_listener.output_type NOT LIKE '%vector(%' AND v_listener.output_type NOT IN ('double precision', 'bigint', 'boolean') THEN
        RAISE EXCEPTION 'superduper: trainer "%": listener "%" outputs %, one row per element or not numbers', v_name, v_listener.name, v_listener.output_type
          USING HINT = 'A listener feature is an embedding (one vector per row) or a number.';
      END IF;
      v_joins := v_joins || format(' JOIN superduper.%I AS o%s ON %s', v_listener.output_table, i,
        (SELECT string_agg(format('o%s.%I = src.%I', i, p, p), ' AND ') FROM unnest(v_listener.pk) AS p));
      v_kind := CASE WHEN v_listener.output_type LIKE '%vector(%'
                     THEN jsonb_build_object('kind', 'vector', 'dim', substring(v_listener.output_type FROM '\((\d+)\)')::integer)
                     WHEN v_listener.output_type = 'boolean' THEN '{"kind": "boolean"}'
                     ELSE '{"kind": "number"}' END;
      v_select := v_select || format('o%s.output%s AS f%s', i, CASE WHEN v_kind ->> 'kind' = 'vector' THEN '::text' ELSE '' END, i);
      v_features := v_features || (jsonb_build_object('name', v_listener.name, 'alias', 'f' || i) || v_kind);
    ELSE
      v_kind := superduper._training_column_kind(v_name, v_source, v_feature ->> 'column', v_feature ->> 'encoding');
      v_select := v_select || format('src.%I%s AS f%s', v_feature ->> 'column',
        CASE v_kind ->> 'kind' WHEN 'number' THEN '::float8' WHEN 'boolean' THEN '' ELSE '::text' END, i);
      v_features := v_features || (jsonb_build_object('name', v_feature ->> 'column', 'alias', 'f' || i) || v_kind);
    END IF;
    i := i + 1;
  END LOOP;

  IF v_task = 'clustering' THEN
    v_output := '{"type": "integer"}';
  ELSE
    SELECT a.atttypid, t.typcategory INTO v_target_type, v_target_category
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = v_source AND a.attname = p_spec ->> 'target' AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'superduper: trainer "%": % has no target column %', v_name, v_source, quote_ident(p_spec ->> 'target')
        USING HINT = 'Columns: ' || (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                                     WHERE attrelid = v_source AND attnum > 0 AND NOT attisdropped) || '.';
    END IF;
    IF v_task = 'regression' THEN
      IF v_target_category <> 'N' THEN
        RAISE EXCEPTION 'superduper: trainer "%": regression predicts numbers, and target % is %', v_name, quote_ident(p_spec ->> 'target'), format_type(v_target_type, NULL)
          USING HINT = 'Use "task": "classification" for labels.';
      END IF;
      v_output := '{"type": "float"}';
      v_target_sql := format('src.%I::float8', p_spec ->> 'target');
    ELSE
      v_output := CASE WHEN v_target_type = 'bool'::regtype THEN '{"type": "boolean"}'
                       WHEN v_target_type IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN '{"type": "integer"}'
                       WHEN v_target_category IN ('S', 'E') THEN '{"type": "text"}' END;
      IF v_output IS NULL THEN
        RAISE EXCEPTION 'superduper: trainer "%": target % is %, not labels a classifier predicts', v_name, quote_ident(p_spec ->> 'target'), format_type(v_target_type, NULL)
          USING HINT = 'Labels are text, boolean or integers; for a continuous target use "task": "regression".';
      END IF;
      v_target_sql := format('src.%I%s', p_spec ->> 'target', CASE WHEN v_output ->> 'type' = 'text' THEN '::text' WHEN v_output ->> 'type' = 'integer' THEN '::float8' ELSE '' END);
    END IF;
    v_select := v_select || (v_target_sql || ' AS target');
  END IF;

  v_query := format(E'SELECT %s FROM %s AS src%s WHERE (\n%s\n)', array_to_string(v_select, ', '), v_source, v_joins,
                    coalesce(p_spec ->> 'filter', 'true'));
  RETURN jsonb_build_object('trainer', v_name, 'task', v_task, 'algorithm', p_spec ->> 'algorithm',
    'hyperparameters', p_spec -> 'hyperparameters', 'seed', p_spec -> 'seed', 'validation', p_spec -> 'validation',
    'features', v_features, 'target', p_spec -> 'target', 'output', v_output, 'query', v_query,
    'source', v_source::text, 'filter', p_spec -> 'filter');
END
$$;

-- Normalizes and checks a trainer spec (the data it reads is checked at each run).
CREATE OR REPLACE FUNCTION superduper._trainer_spec(p_spec jsonb, p_search_path text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_name text := p_spec ->> 'name';
  v_task text := p_spec ->> 'task';
  v_task_info jsonb := superduper._training_task(p_spec ->> 'task');
  v_algorithm text;
  v_known jsonb;
  v_hyper jsonb := coalesce(p_spec -> 'hyperparameters', '{}');
  v_validation jsonb := coalesce(p_spec -> 'validation', '{"holdout": 0.2}');
  v_deploy jsonb := coalesce(p_spec -> 'deploy', '{}');
  v_retrain jsonb := coalesce(p_spec -> 'retrain', '{}');
  v_source regclass;
  v_features jsonb := '[]';
  v_feature jsonb;
  v_unknown text;
  v_key text;
  v_value jsonb;
  v_cursor refcursor;
  v_spec jsonb;
BEGIN
  IF jsonb_typeof(p_spec -> 'name') IS DISTINCT FROM 'string' OR btrim(v_name) = '' OR octet_length(v_name) > 63 THEN
    RAISE EXCEPTION 'superduper.apply: a trainer needs a "name" of 1 to 63 bytes';
  END IF;
  SELECT string_agg(quote_literal(k), ', ' ORDER BY k) INTO v_unknown FROM jsonb_object_keys(p_spec) AS k
  WHERE k NOT IN ('type', 'name', 'model', 'schema', 'table', 'filter', 'features', 'target', 'task', 'algorithm',
                  'hyperparameters', 'seed', 'validation', 'deploy', 'retrain');
  IF v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'superduper: trainer "%": unknown field(s) %', v_name, v_unknown
      USING HINT = 'Fields: name, model, schema, table, filter, features, target, task, algorithm, hyperparameters, seed, validation, deploy, retrain.';
  END IF;
  IF v_task_info IS NULL THEN
    RAISE EXCEPTION 'superduper: trainer "%": "task" must be "classification", "regression" or "clustering", not %', v_name, coalesce(p_spec -> 'task', 'null'::jsonb);
  END IF;
  IF p_spec ? 'model' AND (jsonb_typeof(p_spec -> 'model') <> 'string' OR btrim(p_spec ->> 'model') = '' OR length(p_spec ->> 'model') > 63) THEN
    RAISE EXCEPTION 'superduper: trainer "%": "model" must be the name (1 to 63 characters) of the model it trains', v_name;
  END IF;
  v_source := superduper._trainer_source(v_name, p_spec ->> 'schema', p_spec ->> 'table', p_search_path);

  -- Features: column names, {"column", "encoding"}, or {"listener"}.
  IF jsonb_typeof(p_spec -> 'features') IS DISTINCT FROM 'array' OR jsonb_array_length(p_spec -> 'features') = 0 THEN
    RAISE EXCEPTION 'superduper: trainer "%": "features" must be a non-empty list of columns', v_name
      USING HINT = 'For example ["age", {"column": "plan", "encoding": "one_hot"}, {"listener": "bio_embedding"}].';
  END IF;
  FOR v_feature IN SELECT value FROM jsonb_array_elements(p_spec -> 'features') LOOP
    IF jsonb_typeof(v_feature) = 'string' THEN
      v_feature := jsonb_build_object('column', v_feature);
    END IF;
    IF jsonb_typeof(v_feature) <> 'object'
       OR NOT (v_feature ? 'column' OR v_feature ? 'listener') OR (v_feature ? 'column' AND v_feature ? 'listener')
       OR EXISTS (SELECT 1 FROM jsonb_object_keys(v_feature) AS k WHERE k NOT IN ('column', 'encoding', 'listener'))
       OR EXISTS (SELECT 1 FROM jsonb_each(v_feature) AS e WHERE jsonb_typeof(e.value) <> 'string') THEN
      RAISE EXCEPTION 'superduper: trainer "%": feature % is not a column name, {"column": ..., "encoding": "one_hot"} or {"listener": ...}', v_name, v_feature;
    END IF;
    IF v_features @> jsonb_build_array(v_feature - 'encoding') OR v_features @> jsonb_build_array(v_feature) THEN
      RAISE EXCEPTION 'superduper: trainer "%": feature % is listed twice', v_name, v_feature;
    END IF;
    v_features := v_features || jsonb_build_array(v_feature);
  END LOOP;

  -- The target: what classification and regression predict; clustering has none.
  IF v_task = 'clustering' AND p_spec ? 'target' THEN
    RAISE EXCEPTION 'superduper: trainer "%": clustering has no target, and "target" is %', v_name, p_spec -> 'target'
      USING HINT = 'Remove "target", or use "task": "classification".';
  END IF;
  IF v_task <> 'clustering' AND jsonb_typeof(p_spec -> 'target') IS DISTINCT FROM 'string' THEN
    RAISE EXCEPTION 'superduper: trainer "%": % needs a "target" column', v_name, v_task
      USING HINT = 'The column holding what the model learns to predict.';
  END IF;
  IF v_features @> jsonb_build_array(jsonb_build_object('column', p_spec ->> 'target')) THEN
    RAISE EXCEPTION 'superduper: trainer "%": target % is also a feature', v_name, quote_ident(p_spec ->> 'target')
      USING HINT = 'A model that reads its answer learns nothing: remove it from "features".';
  END IF;

  v_algorithm := coalesce(p_spec ->> 'algorithm', v_task_info ->> 'algorithm');
  IF NOT (v_task_info -> 'algorithms') ? v_algorithm THEN
    RAISE EXCEPTION 'superduper: trainer "%": algorithm % does not do %', v_name, coalesce(p_spec -> 'algorithm', 'null'::jsonb), v_task
      USING HINT = 'For ' || v_task || ': ' || (SELECT string_agg(value, ', ') FROM jsonb_array_elements_text(v_task_info -> 'algorithms')) || '.';
  END IF;
  v_known := superduper._training_hyperparameters(v_algorithm);
  IF jsonb_typeof(v_hyper) <> 'object' THEN
    RAISE EXCEPTION 'superduper: trainer "%": "hyperparameters" must be an object, not %', v_name, v_hyper;
  END IF;
  FOR v_key, v_value IN SELECT key, value FROM jsonb_each(v_hyper) LOOP
    IF NOT v_known ? v_key THEN
      RAISE EXCEPTION 'superduper: trainer "%": % has no hyperparameter %', v_name, v_algorithm, quote_literal(v_key)
        USING HINT = CASE WHEN v_known = '{}' THEN v_algorithm || ' has none.'
                          ELSE 'Its hyperparameters: ' || (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(v_known) AS k) || '.' END;
    END IF;
    IF jsonb_typeof(v_value) <> 'number' OR v_value::text::numeric < (v_known -> v_key ->> 'min')::numeric
       OR (coalesce((v_known -> v_key ->> 'positive')::boolean, false) AND v_value::text::numeric <= 0)
       OR v_value::text::numeric > (v_known -> v_key ->> 'max')::numeric
       OR ((v_known -> v_key ->> 'integer')::boolean AND v_value::text::numeric <> trunc(v_value::text::numeric)) THEN
      RAISE EXCEPTION 'superduper: trainer "%": hyperparameter % must be a% number from % to %, not %', v_name, v_key,
        CASE WHEN (v_known -> v_key ->> 'integer')::boolean THEN ' whole' ELSE '' END,
        CASE WHEN (v_known -> v_key ->> 'positive')::boolean THEN 'above ' ELSE '' END || (v_known -> v_key ->> 'min'), v_known -> v_key ->> 'max', v_value;
    END IF;
  END LOOP;
  SELECT string_agg(k, ', ') INTO v_unknown FROM jsonb_each(v_known) AS e(k, v) WHERE (v ->> 'required')::boolean AND NOT v_hyper ? k;
  IF v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'superduper: trainer "%": % needs hyperparameter(s) %', v_name, v_algorithm, v_unknown
      USING HINT = 'For kmeans, "k": the number of clusters, e.g. {"k": 5}.';
  END IF;

  IF p_spec ? 'seed' AND (jsonb_typeof(p_spec -> 'seed') <> 'number' OR (p_spec ->> 'seed') !~ '^[0-9]+$' OR (p_spec ->> 'seed')::numeric > 4294967295) THEN
    RAISE EXCEPTION 'superduper: trainer "%": "seed" must be a whole number from 0 to 4294967295, not %', v_name, p_spec -> 'seed';
  END IF;
  IF jsonb_typeof(v_validation) <> 'object'
     OR (SELECT array_agg(k) FROM jsonb_object_keys(CASE WHEN jsonb_typeof(v_validation) = 'object' THEN v_validation ELSE '{}' END) AS k)
        IS DISTINCT FROM ARRAY['holdout'] AND (SELECT array_agg(k) FROM jsonb_object_keys(CASE WHEN jsonb_typeof(v_validation) = 'object' THEN v_validation ELSE '{}' END) AS k)
        IS DISTINCT FROM ARRAY['folds']
     OR jsonb_typeof(coalesce(v_validation -> 'holdout', v_validation -> 'folds')) IS DISTINCT FROM 'number' THEN
    RAISE EXCEPTION 'superduper: trainer "%": "validation" must be {"holdout": <fraction>} or {"folds": <n>}, not %', v_name, v_validation;
  END IF;
  IF v_validation ? 'holdout' AND ((v_validation ->> 'holdout')::numeric <= 0 OR (v_validation ->> 'holdout')::numeric > 0.5) THEN
    RAISE EXCEPTION 'superduper: trainer "%": "holdout" is the share of rows held out to score the model, more than 0 and at most 0.5, not %', v_name, v_validation -> 'holdout';
  END IF;
  IF v_validation ? 'folds' AND ((v_validation ->> 'folds') !~ '^[0-9]+$' OR (v_validation ->> 'folds')::numeric NOT BETWEEN 2 AND 20) THEN
    RAISE EXCEPTION 'superduper: trainer "%": "folds" must be a whole number from 2 to 20, not %', v_name, v_validation -> 'folds';
  END IF;

  -- How runs are deployed.
  SELECT string_agg(quote_literal(k), ', ') INTO v_unknown FROM jsonb_object_keys(CASE WHEN jsonb_typeof(v_deploy) = 'object' THEN v_deploy ELSE '{}' END) AS k
  WHERE k NOT IN ('strategy', 'metric', 'run', 'gate');
  IF jsonb_typeof(v_deploy) <> 'object' OR v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'superduper: trainer "%": "deploy" must be {"strategy", "metric", "gate", "run"}, not %', v_name, v_deploy;
  END IF;
  v_deploy := jsonb_build_object('strategy', coalesce(v_deploy ->> 'strategy', 'best_score'),
                                 'metric', coalesce(v_deploy ->> 'metric', v_task_info ->> 'metric'),
                                 'gate', coalesce(v_deploy -> 'gate', 'true')) || jsonb_strip_nulls(jsonb_build_object('run', v_deploy -> 'run'));
  IF v_deploy ->> 'strategy' NOT IN ('most_recent', 'best_score', 'pinned') THEN
    RAISE EXCEPTION 'superduper: trainer "%": deploy strategy must be "most_recent", "best_score" or "pinned", not %', v_name, v_deploy -> 'strategy';
  END IF;
  IF NOT (v_task_info -> 'metrics') ? (v_deploy ->> 'metric') THEN
    RAISE EXCEPTION 'superduper: trainer "%": % runs report %, not %', v_name, v_task,
      (SELECT string_agg(value, ', ') FROM jsonb_array_elements_text(v_task_info -> 'metrics')), v_deploy -> 'metric';
  END IF;
  IF jsonb_typeof(v_deploy -> 'gate') <> 'boolean' THEN
    RAISE EXCEPTION 'superduper: trainer "%": deploy "gate" must be true or false, not %', v_name, v_deploy -> 'gate';
  END IF;
  IF (v_deploy ->> 'strategy' = 'pinned') <> (v_deploy ? 'run') OR (v_deploy ? 'run' AND (v_deploy ->> 'run') !~ '^[1-9][0-9]*$') THEN
    RAISE EXCEPTION 'superduper: trainer "%": a pinned deploy names its run ({"strategy": "pinned", "run": 3}), and only a pinned one does', v_name;
  END IF;

  -- When it retrains by itself (besides schedules and superduper.train).
  IF jsonb_typeof(v_retrain) <> 'object' OR EXISTS (SELECT 1 FROM jsonb_object_keys(v_retrain) AS k WHERE k <> 'after_rows')
     OR (v_retrain ? 'after_rows' AND ((v_retrain ->> 'after_rows') !~ '^[1-9][0-9]*$')) THEN
    RAISE EXCEPTION 'superduper: trainer "%": "retrain" must be {"after_rows": <n>}, not %', v_name, v_retrain
      USING HINT = 'To retrain on a clock, add a schedule: {"type": "schedule", "cron": "0 3 * * *", "action": {"train": "' || v_name || '"}}.';
  END IF;

  -- A filter is one boolean expression over the source's columns; opening it as
  -- a cursor rejects anything that is not a single SELECT.
  IF p_spec ? 'filter' THEN
    BEGIN
      OPEN v_cursor FOR EXECUTE format(E'SELECT 1 FROM %s AS src WHERE (\n%s\n) LIMIT 0', v_source, p_spec ->> 'filter');
      CLOSE v_cursor;
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION 'superduper: trainer "%": invalid filter %: %', v_name, quote_literal(p_spec ->> 'filter'), SQLERRM
        USING HINT = 'A filter is a boolean SQL expression over the columns of ' || v_source::text || ' (schema-qualify your own functions).';
    END;
  END IF;

  v_spec := jsonb_build_object('type', 'trainer', 'name', v_name, 'model', coalesce(p_spec ->> 'model', v_name),
    'schema', (SELECT nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_source),
    'table', (SELECT relname FROM pg_class WHERE oid = v_source),
    'features', v_features, 'task', v_task, 'algorithm', v_algorithm, 'hyperparameters', v_hyper,
    'seed', coalesce(p_spec -> 'seed', '0'), 'validation', v_validation, 'deploy', v_deploy, 'retrain', v_retrain)
    || jsonb_strip_nulls(jsonb_build_object('filter', p_spec -> 'filter', 'target', p_spec -> 'target'));
  -- Every column and listener it names, checked now rather than at the first run.
  PERFORM superduper._training_plan(v_spec);
  RETURN v_spec;
END
$$;

-- The tables a relation's rows come from: itself, or the tables a view reads.
CREATE OR REPLACE FUNCTION superduper._training_watched(p_source regclass)
RETURNS regclass[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN (SELECT relkind FROM pg_class WHERE oid = p_source) IN ('r', 'p') THEN ARRAY[p_source]
    ELSE (SELECT coalesce(array_agg(DISTINCT d.refobjid::regclass), '{}')
          FROM pg_rewrite w JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
          JOIN pg_class c ON c.oid = d.refobjid AND c.relkind IN ('r', 'p')
          WHERE w.ev_class = p_source AND d.refobjid <> p_source) END
$$;

-- Rows inserted, updated and deleted so far in the tables a trainer watches.
CREATE OR REPLACE FUNCTION superduper._training_changes(p_watched regclass[])
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables WHERE relid = ANY (p_watched::oid[])
$$;

-- Queues a run of a trainer, or returns the one already waiting.
CREATE OR REPLACE FUNCTION superduper._training_queue(p_trainer text, p_reason text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_trainer superduper._trainers;
  v_run integer;
BEGIN
  SELECT * INTO v_trainer FROM superduper._trainers WHERE name = p_trainer FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'superduper: no trainer named %', coalesce(quote_literal(p_trainer), 'NULL');
  END IF;
  SELECT run INTO v_run FROM superduper._training_runs WHERE trainer = p_trainer AND state = 'queued';
  IF v_run IS NULL THEN
    INSERT INTO superduper._training_runs (trainer, run, reason, state, spec)
    VALUES (p_trainer, coalesce((SELECT max(run) FROM superduper._training_runs WHERE trainer = p_trainer), 0) + 1, p_reason, 'queued', v_trainer.spec)
    RETURNING run INTO v_run;
  ELSE
    -- The waiting run fits by the spec as it is now.
    UPDATE superduper._training_runs SET spec = v_trainer.spec WHERE trainer = p_trainer AND run = v_run;
  END IF;
  UPDATE superduper._trainers SET changes_seen = superduper._training_changes(watched) WHERE name = p_trainer;
  RETURN v_run;
END
$$;

CREATE OR REPLACE FUNCTION superduper._apply_trainer(p_spec jsonb, p_search_path text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_spec jsonb := superduper._trainer_spec(p_spec, p_search_path);
  v_name text := v_spec ->> 'name';
  v_model text := v_spec ->> 'model';
  v_old superduper._trainers;
  v_source regclass := superduper._trainer_source(v_name, v_spec ->> 'schema', v_spec ->> 'table', NULL);
  v_run integer;
  v_plan jsonb;
BEGIN
  SELECT * INTO v_old FROM superduper._trainers WHERE name = v_name FOR UPDATE;
  IF FOUND AND v_old.spec = v_spec THEN
    RETURN jsonb_build_object('type', 'trainer', 'name', v_name, 'action', 'unchanged');
  END IF;
  IF (NOT FOUND OR v_old.model <> v_model) AND EXISTS (SELECT 1 FROM superduper._models WHERE name = v_model) THEN
    RAISE EXCEPTION 'superduper: trainer "%": a model named "%" exists already', v_name, v_model
      USING HINT = 'A trainer makes its own model: name another in "model", or remove that one.';
  END IF;
  IF FOUND AND v_old.model <> v_model THEN
    RAISE EXCEPTION 'superduper: trainer "%" trains model "%"; it cannot train "%" instead', v_name, v_old.model, v_model
      USING HINT = 'Remove the trainer first, or apply a trainer of another name.';
  END IF;
  IF NOT FOUND THEN
    -- Its model, with no version deployed yet: listeners may name it now, and
    -- compute once the first run is deployed (sidecars skip it until then).
    v_plan := superduper._training_plan(v_spec);
    PERFORM set_config('superduper.deploying', v_name, true);
    PERFORM superduper._apply_model(jsonb_build_object('type', 'model', 'name', v_model, 'runtime', 'trained',
      'output', v_plan -> 'output', 'config', jsonb_build_object('trainer', v_name)), '{}');
    PERFORM set_config('superduper.deploying', '', true);
    INSERT INTO superduper._trainers (name, model, source, spec, watched)
    VALUES (v_name, v_model, v_source, v_spec, superduper._training_watched(v_source));
    v_run := superduper._training_queue(v_name, 'applied');
    RETURN jsonb_build_object('type', 'trainer', 'name', v_name, 'action', 'created', 'run', v_run);
  END IF;
  UPDATE superduper._trainers SET spec = v_spec, source = v_source, watched = superduper._training_watched(v_source), updated_at = now()
  WHERE name = v_name;
  IF superduper._identity('trainer', v_old.spec) = superduper._identity('trainer', v_spec) THEN
    -- How it deploys or retrains changed: no new fit.
    RETURN jsonb_build_object('type', 'trainer', 'name', v_name, 'action', 'updated');
  END IF;
  -- What it fits changed: a new run; the deployed one serves until it is deployed.
  v_run := superduper._training_queue(v_name, 'applied');
  RETURN jsonb_build_object('type', 'trainer', 'name', v_name, 'action', 'updated', 'run', v_run);
END
$$;

-- Removes a trainer, its runs and its model. Listeners using the model are
-- removed too with p_cascade, and otherwise make this fail.
CREATE OR REPLACE FUNCTION superduper._remove_trainer(p_name text, p_keep_outputs boolean, p_cascade boolean)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_model text := (SELECT model FROM superduper._trainers WHERE name = p_name);
  v_users text[] := superduper._model_users(v_model);
  v_schedules text[] := (SELECT array_agg(name ORDER BY name) FROM superduper._schedules WHERE action ->> 'train' = p_name);
  v_removed jsonb := '[]';
BEGIN
  IF v_users IS NOT NULL AND NOT p_cascade THEN
    RAISE EXCEPTION 'superduper.remove: trainer "%" trains model "%", used by %', p_name, v_model, array_to_string(v_users, ', ')
      USING HINT = 'Remove those first, or pass p_cascade => true to remove them too.';
  END IF;
  IF v_schedules IS NOT NULL AND NOT p_cascade THEN
    RAISE EXCEPTION 'superduper.remove: trainer "%" is trained by schedule(s) %', p_name, array_to_string(v_schedules, ', ')
      USING HINT = 'Remove those first, or pass p_cascade => true to remove them too.';
  END IF;
  v_users := v_users || v_schedules;
  FOR i IN 1 .. coalesce(cardinality(v_users), 0) LOOP
    v_removed := v_removed || superduper.remove(v_users[i], p_keep_outputs, true);
  END LOOP;
  DELETE FROM superduper._trainers WHERE name = p_name;
  PERFORM set_config('superduper.deploying', p_name, true);
  v_removed := v_removed || superduper._remove_model(v_model, p_keep_outputs, p_cascade);
  PERFORM set_config('superduper.deploying', '', true);
  RETURN v_removed || jsonb_build_array(jsonb_build_object('type', 'trainer', 'name', p_name, 'action', 'removed'));
END
$$;

-- A trainer by its name or its model's; NULL when neither.
CREATE OR REPLACE FUNCTION superduper._trainer_named(p_name text)
RETURNS superduper._trainers
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM superduper._trainers WHERE name = p_name OR model = p_name ORDER BY name = p_name DESC LIMIT 1
$$;

CREATE OR REPLACE FUNCTION superduper._trainer_or_raise(p_function text, p_name text)
RETURNS superduper._trainers
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_trainer superduper._trainers := superduper._trainer_named(p_name);
BEGIN
  IF v_trainer.name IS NULL THEN
    RAISE EXCEPTION 'superduper.%: no trainer (or model of a trainer) named %', p_function, coalesce(quote_literal(p_name), 'NULL')
      USING HINT = 'Trainers: ' || coalesce((SELECT string_agg(quote_literal(name), ', ' ORDER BY name) FROM superduper._trainers), '(none)');
  END IF;
  RETURN v_trainer;
END
$$;

-- Trains again, in a sidecar: returns at once with the run's number (the run
-- already waiting, if one is). superduper.training_runs shows how it went.
CREATE OR REPLACE FUNCTION superduper.train(p_trainer text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- Sidecars look for runs to fit as they reconcile (every 2 s by default).
  RETURN superduper._training_queue((superduper._trainer_or_raise('train', p_trainer)).name, 'on_demand');
END
$$;

-- The deployed run of a trainer (its model's), NULL before the first.
CREATE OR REPLACE FUNCTION superduper._training_deployed(p_trainer text)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT (m.config ->> 'run')::integer FROM superduper._trainers t JOIN superduper._models m ON m.name = t.model WHERE t.name = p_trainer
$$;

-- Whether score a is better than b on a metric (MAE: lower is better); NULLs are worst.
CREATE OR REPLACE FUNCTION superduper._training_better(p_metric text, p_a float8, p_b float8)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT p_a IS NOT NULL AND (p_b IS NULL OR CASE WHEN p_metric = 'mae' THEN p_a < p_b ELSE p_a > p_b END)
$$;

-- Deploys a finished run: its model is applied again with the run's artifact
-- (a new model version; listeners using it rebuild beside their current
-- version, which serves until the new outputs are complete).
CREATE OR REPLACE FUNCTION superduper._training_deploy(p_trainer text, p_run integer, p_strategy text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_trainer superduper._trainers;
  v_run superduper._training_runs;
  v_result jsonb;
BEGIN
  SELECT * INTO v_trainer FROM superduper._trainers WHERE name = p_trainer;
  SELECT * INTO v_run FROM superduper._training_runs WHERE trainer = p_trainer AND run = p_run;
  IF v_run.state IS DISTINCT FROM 'done' THEN
    RAISE EXCEPTION 'superduper.deploy: trainer "%" has no finished run %', p_trainer, p_run
      USING HINT = 'Finished runs: ' || coalesce((SELECT string_agg(run::text, ', ' ORDER BY run) FROM superduper._training_runs
                                                   WHERE trainer = p_trainer AND state = 'done'), '(none)') || '. See superduper.training_runs.';
  END IF;
  PERFORM set_config('superduper.deploying', p_trainer, true);
  v_result := superduper._apply_model(jsonb_build_object('type', 'model', 'name', v_trainer.model, 'runtime', 'trained',
    'output', v_run.output, 'config', jsonb_build_object('trainer', p_trainer, 'run', p_run), 'artifact', v_run.artifact), '{}');
  PERFORM set_config('superduper.deploying', '', true);
  INSERT INTO superduper._training_deployments (trainer, run, strategy, model_version)
  VALUES (p_trainer, p_run, p_strategy, (v_result ->> 'version')::integer);
  RETURN jsonb_build_object('trainer', p_trainer, 'model', v_trainer.model, 'run', p_run, 'model_version', (v_result ->> 'version')::integer,
                            'strategy', p_strategy, 'rebuilding', coalesce(v_result -> 'rebuilding', '[]'));
END
$$;

-- The run a strategy picks among the finished runs (NULL when none is finished).
CREATE OR REPLACE FUNCTION superduper._training_pick(p_trainer text, p_strategy text, p_metric text)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT run FROM superduper._training_runs
  WHERE trainer = p_trainer AND state = 'done'
  ORDER BY CASE WHEN p_strategy = 'best_score' THEN (metrics ->> p_metric)::float8 * CASE WHEN p_metric = 'mae' THEN -1 ELSE 1 END END DESC NULLS LAST,
           run DESC
  LIMIT 1
$$;

-- Deploys a run of a trainer (named by itself or its model), by strategy:
-- most_recent (the newest finished run), best_score (the best on the trainer's
-- deploy metric, or p_metric), or pinned (p_run, kept deployed whatever later
-- runs score until a deploy by another strategy). NULL strategy: the trainer's.
CREATE OR REPLACE FUNCTION superduper.deploy(p_trainer text, p_strategy text DEFAULT NULL, p_run integer DEFAULT NULL,
                                             p_metric text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_trainer superduper._trainers := superduper._trainer_or_raise('deploy', p_trainer);
  v_strategy text := coalesce(p_strategy, CASE WHEN p_run IS NOT NULL THEN 'pinned' END, v_trainer.spec -> 'deploy' ->> 'strategy');
  v_metric text := coalesce(p_metric, v_trainer.spec -> 'deploy' ->> 'metric');
  v_run integer;
  v_result jsonb;
BEGIN
  PERFORM pg_advisory_xact_lock(@{locks.namespace}, @{locks.apply});
  IF v_strategy NOT IN ('most_recent', 'best_score', 'pinned') THEN
    RAISE EXCEPTION 'superduper.deploy: strategy must be most_recent, best_score or pinned, not %', quote_literal(v_strategy);
  END IF;
  IF NOT superduper._training_task(v_trainer.spec ->> 'task') -> 'metrics' ? v_metric THEN
    RAISE EXCEPTION 'superduper.deploy: trainer "%": % runs report %, not %', v_trainer.name, v_trainer.spec ->> 'task',
      (SELECT string_agg(value, ', ') FROM jsonb_array_elements_text(superduper._training_task(v_trainer.spec ->> 'task') -> 'metrics')), quote_literal(v_metric);
  END IF;
  IF v_strategy = 'pinned' THEN
    v_run := coalesce(p_run, (v_trainer.spec -> 'deploy' ->> 'run')::integer);
    IF v_run IS NULL THEN
      RAISE EXCEPTION 'superduper.deploy: trainer "%": a pinned deploy names its run', v_trainer.name
        USING HINT = 'superduper.deploy(''' || v_trainer.name || ''', ''pinned'', <run>); see superduper.training_runs.';
    END IF;
  ELSIF p_run IS NOT NULL THEN
    RAISE EXCEPTION 'superduper.deploy: trainer "%": strategy % picks its run; a run number goes with "pinned"', v_trainer.name, v_strategy;
  ELSE
    v_run := superduper._training_pick(v_trainer.name, v_strategy, v_metric);
    IF v_run IS NULL THEN
      RAISE EXCEPTION 'superduper.deploy: trainer "%" has no finished run yet', v_trainer.name
        USING HINT = 'See superduper.training_runs; superduper.train(''' || v_trainer.name || ''') starts one.';
    END IF;
  END IF;
  UPDATE superduper._trainers SET pinned_run = CASE WHEN v_strategy = 'pinned' THEN v_run END WHERE name = v_trainer.name;
  IF v_run = superduper._training_deployed(v_trainer.name) THEN
    RETURN jsonb_build_object('trainer', v_trainer.name, 'model', v_trainer.model, 'run', v_run, 'strategy', v_strategy, 'action', 'unchanged');
  END IF;
  v_result := superduper._training_deploy(v_trainer.name, v_run, v_strategy);
  RETURN v_result || '{"action": "deployed"}';
END
$$;

-- Deploys again the run deployed before the current one (skipping runs rolled
-- back), and pins it: later runs are not deployed by themselves until a deploy
-- by strategy. Each rollback goes one deployment further back.
CREATE OR REPLACE FUNCTION superduper.rollback(p_trainer text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_trainer superduper._trainers := superduper._trainer_or_raise('rollback', p_trainer);
  v_current integer;
  v_previous integer;
BEGIN
  PERFORM pg_advisory_xact_lock(@{locks.namespace}, @{locks.apply});
  v_current := superduper._training_deployed(v_trainer.name);
  SELECT run INTO v_previous FROM superduper._training_deployments
  WHERE trainer = v_trainer.name AND rolled_back_at IS NULL AND run IS DISTINCT FROM v_current
  ORDER BY id DESC LIMIT 1;
  IF v_previous IS NULL THEN
    RAISE EXCEPTION 'superduper.rollback: trainer "%" has no earlier deployment to roll back to (run % is deployed)', v_trainer.name, coalesce(v_current::text, 'none')
      USING HINT = 'superduper.deploy(''' || v_trainer.name || ''', ''pinned'', <run>) deploys any finished run.';
  END IF;
  UPDATE superduper._training_deployments SET rolled_back_at = now() WHERE trainer = v_trainer.name AND run = v_current AND rolled_back_at IS NULL;
  UPDATE superduper._trainers SET pinned_run = v_previous WHERE name = v_trainer.name;
  RETURN superduper._training_deploy(v_trainer.name, v_previous, 'rollback') || jsonb_build_object('action', 'rolled back', 'from', v_current);
END
$$;

-- For sidecars: queues a run of each trainer whose watched tables changed by
-- its "after_rows" since its last run was queued. Returns how many it queued.
CREATE OR REPLACE FUNCTION superduper._training_changed()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_trainer superduper._trainers;
  v_now bigint;
  v_queued integer := 0;
BEGIN
  FOR v_trainer IN SELECT * FROM superduper._trainers WHERE spec -> 'retrain' ? 'after_rows' ORDER BY name LOOP
    v_now := superduper._training_changes(v_trainer.watched);
    IF v_trainer.changes_seen IS NULL OR v_now < v_trainer.changes_seen THEN
      -- No count yet, or the statistics were reset (a crash resets them): count from here.
      UPDATE superduper._trainers SET changes_seen = v_now WHERE name = v_trainer.name;
    ELSIF v_now - v_trainer.changes_seen >= (v_trainer.spec -> 'retrain' ->> 'after_rows')::bigint THEN
      PERFORM superduper._training_queue(v_trainer.name, 'changed_rows');
      v_queued := v_queued + 1;
    END IF;
  END LOOP;
  RETURN v_queued;
END
$$;

-- For sidecars: claims a run to fit, the oldest queued one, or a running one
-- whose sidecar stopped answering (its lease ran out), at most three times;
-- then that run fails, saying so. Never a trainer's second run while its first
-- is running. Returns the run and what to read and fit (_training_plan), or
-- nothing.
CREATE OR REPLACE FUNCTION superduper._training_claim(p_worker text, p_lease interval)
RETURNS TABLE (trainer text, run integer, attempts integer, plan jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_run superduper._training_runs;
  v_plan jsonb;
BEGIN
  LOOP
    SELECT r.* INTO v_run FROM superduper._training_runs r
    WHERE (r.state = 'running' AND r.lease_until < now())
       OR (r.state = 'queued' AND NOT EXISTS (SELECT 1 FROM superduper._training_runs x WHERE x.trainer = r.trainer AND x.state = 'running'))
    ORDER BY r.state = 'running' DESC, r.queued_at
    FOR UPDATE SKIP LOCKED LIMIT 1;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    IF v_run.state = 'running' AND v_run.attempts >= 3 THEN
      UPDATE superduper._training_runs r
      SET state = 'failed', finished_at = now(), lease_until = NULL,
          error = format('its sidecar stopped answering %s times (last: %s); superduper.train(%L) runs it again', v_run.attempts, v_run.claimed_by, v_run.trainer)
      WHERE r.trainer = v_run.trainer AND r.run = v_run.run;
      CONTINUE;
    END IF;
    BEGIN
      v_plan := superduper._training_plan(v_run.spec);
    EXCEPTION WHEN OTHERS THEN
      -- A column gone or changed since the apply: failed now, with the reason.
      UPDATE superduper._training_runs r SET state = 'failed', finished_at = now(), started_at = now(), error = SQLERRM
      WHERE r.trainer = v_run.trainer AND r.run = v_run.run;
      CONTINUE;
    END;
    BEGIN
      UPDATE superduper._training_runs r
      SET state = 'running', claimed_by = p_worker, lease_until = now() + p_lease, attempts = r.attempts + 1,
          started_at = now(), error = NULL
      WHERE r.trainer = v_run.trainer AND r.run = v_run.run;
    EXCEPTION WHEN unique_violation THEN
      -- Another sidecar just took over this trainer's running run: not ours.
      RETURN;
    END;
    trainer := v_run.trainer;
    run := v_run.run;
    attempts := v_run.attempts + 1;
    plan := v_plan;
    RETURN NEXT;
    RETURN;
  END LOOP;
END
$$;

-- For sidecars: the run is still this sidecar's; its lease extended. false
-- when it was taken over (or the trainer removed): the sidecar stops fitting.
CREATE OR REPLACE FUNCTION superduper._training_extend(p_trainer text, p_run integer, p_worker text, p_lease interval)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE superduper._training_runs SET lease_until = now() + p_lease
  WHERE trainer = p_trainer AND run = p_run AND claimed_by = p_worker AND state = 'running';
  RETURN FOUND;
END
$$;

-- For sidecars: records a fitted run (its artifact stored with it, in one
-- transaction) and deploys it if the trainer's strategy and gate say so.
-- Returns the decision; NULL when the run is no longer this sidecar's.
CREATE OR REPLACE FUNCTION superduper._training_finish(p_trainer text, p_run integer, p_worker text, p_artifact bytea, p_result jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_trainer superduper._trainers;
  v_run superduper._training_runs;
  v_deploy jsonb;
  v_metric text;
  v_deployed integer;
  v_deployed_score float8;
  v_score float8;
  v_decision text;
  v_deploy_it boolean := false;
BEGIN
  PERFORM pg_advisory_xact_lock(@{locks.namespace}, @{locks.apply});
  SELECT * INTO v_run FROM superduper._training_runs
  WHERE trainer = p_trainer AND run = p_run AND claimed_by = p_worker AND state = 'running' FOR UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  SELECT * INTO v_trainer FROM superduper._trainers WHERE name = p_trainer;
  UPDATE superduper._training_runs
  SET state = 'done', artifact = superduper.put_artifact(p_artifact), output = p_result -> 'output', metrics = p_result -> 'metrics',
      rows = (p_result ->> 'rows')::bigint, trained_rows = (p_result ->> 'trained_rows')::bigint,
      held_out_rows = (p_result ->> 'held_out_rows')::bigint, snapshot = p_result ->> 'snapshot',
      fit_seconds = (p_result ->> 'fit_seconds')::float8, seconds = extract(epoch FROM now() - started_at)::float8,
      finished_at = now(), lease_until = NULL
  WHERE trainer = p_trainer AND run = p_run;

  -- Deployed or kept, by the trainer's deploy spec as it is now.
  v_deploy := v_trainer.spec -> 'deploy';
  v_metric := v_deploy ->> 'metric';
  v_deployed := superduper._training_deployed(p_trainer);
  v_score := (p_result -> 'metrics' ->> v_metric)::float8;
  SELECT (metrics ->> v_metric)::float8 INTO v_deployed_score FROM superduper._training_runs WHERE trainer = p_trainer AND run = v_deployed;
  IF v_trainer.pinned_run IS NOT NULL OR v_deploy ->> 'strategy' = 'pinned' THEN
    v_decision := format('kept, not deployed: run %s is pinned (superduper.deploy with a strategy unpins it)', coalesce(v_trainer.pinned_run::text, v_deploy ->> 'run'));
  ELSIF v_deployed IS NULL THEN
    v_deploy_it := true;
    v_decision := format('deployed: the first finished run (%s %s)', v_metric, coalesce(round(v_score::numeric, 4)::text, 'not computed'));
  ELSIF v_deploy ->> 'strategy' = 'most_recent' AND NOT (v_deploy ->> 'gate')::boolean THEN
    v_deploy_it := true;
    v_decision := format('deployed: the most recent run (no gate; %s %s, run %s had %s)', v_metric, round(v_score::numeric, 4), v_deployed, round(v_deployed_score::numeric, 4));
  ELSIF v_deploy ->> 'strategy' = 'most_recent' AND NOT superduper._training_better(v_metric, v_deployed_score, v_score) THEN
    v_deploy_it := true;
    v_decision := format('deployed: the most recent run, %s %s, not worse than run %s''s %s', v_metric, round(v_score::numeric, 4), v_deployed, round(v_deployed_score::numeric, 4));
  ELSIF v_deploy ->> 'strategy' = 'best_score' AND superduper._training_better(v_metric, v_score, v_deployed_score) THEN
    v_deploy_it := true;
    v_decision := format('deployed: %s %s, better than run %s''s %s', v_metric, round(v_score::numeric, 4), v_deployed, round(v_deployed_score::numeric, 4));
  ELSE
    v_decision := format('kept, not deployed: %s %s, %s deployed run %s''s %s', v_metric, coalesce(round(v_score::numeric, 4)::text, 'not computed'),
                         CASE WHEN v_score = v_deployed_score THEN 'no better than' ELSE 'worse than' END, v_deployed, round(v_deployed_score::numeric, 4));
  END IF;
  UPDATE superduper._training_runs SET decision = v_decision WHERE trainer = p_trainer AND run = p_run;
  IF v_deploy_it THEN
    PERFORM superduper._training_deploy(p_trainer, p_run, CASE WHEN v_deploy ->> 'strategy' = 'pinned' THEN 'most_recent' ELSE v_deploy ->> 'strategy' END);
  END IF;
  RETURN jsonb_build_object('trainer', p_trainer, 'run', p_run, 'deployed', v_deploy_it, 'decision', v_decision);
END
$$;

-- For sidecars: a run that could not be fitted, with why (the data, a limit).
CREATE OR REPLACE FUNCTION superduper._training_fail(p_trainer text, p_run integer, p_worker text, p_error text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE superduper._training_runs
  SET state = 'failed', error = p_error, finished_at = now(), lease_until = NULL,
      seconds = extract(epoch FROM now() - started_at)::float8
  WHERE trainer = p_trainer AND run = p_run AND claimed_by = p_worker AND state = 'running';
  RETURN FOUND;
END
$$;

-- For sidecars stopping: their runs are handed over at once, not when the lease runs out.
CREATE OR REPLACE FUNCTION superduper._training_release(p_worker text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_count integer;
BEGIN
  UPDATE superduper._training_runs SET lease_until = now() - interval '1 second', attempts = greatest(attempts - 1, 0)
  WHERE claimed_by = p_worker AND state = 'running';
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$$;

-- Every run of every trainer, for people.
CREATE OR REPLACE VIEW superduper.training_runs AS
SELECT r.trainer, t.model, r.run, r.state, r.reason,
       r.run = (m.config ->> 'run')::integer AS deployed,
       (SELECT d.model_version FROM superduper._training_deployments d WHERE d.trainer = r.trainer AND d.run = r.run ORDER BY d.id DESC LIMIT 1) AS model_version,
       r.metrics, r.rows, r.trained_rows, r.held_out_rows, r.snapshot, r.fit_seconds, r.seconds, r.decision, r.error,
       r.attempts, r.claimed_by, r.queued_at, r.started_at, r.finished_at, r.artifact, r.spec
FROM superduper._training_runs r
JOIN superduper._trainers t ON t.name = r.trainer
LEFT JOIN superduper._models m ON m.name = t.model;

-- Each trainer: what it fits, which run is deployed and how, when it retrains.
CREATE OR REPLACE VIEW superduper.trainers AS
SELECT t.name, t.model, t.source, t.spec ->> 'task' AS task, t.spec ->> 'algorithm' AS algorithm,
       (m.config ->> 'run')::integer AS deployed_run, m.version AS model_version, t.pinned_run,
       t.spec -> 'deploy' ->> 'strategy' AS strategy, t.spec -> 'deploy' ->> 'metric' AS metric,
       (t.spec -> 'retrain' ->> 'after_rows')::bigint AS retrain_after_rows,
       superduper._training_changes(t.watched) - t.changes_seen AS changed_rows,
       (SELECT count(*) FROM superduper._training_runs r WHERE r.trainer = t.name) AS runs,
       t.created_at, t.updated_at, t.spec_version
FROM superduper._trainers t LEFT JOIN superduper._models m ON m.name = t.model;

-- Every deployment, newest last.
CREATE OR REPLACE VIEW superduper.training_deployments AS
SELECT trainer, run, strategy, model_version, deployed_at, rolled_back_at FROM superduper._training_deployments;
