-- A vector index's breaking change (another listener, measure or graph shape,
-- 070_vector_indexes.sql) adds a 'building' version beside the current one. A
-- sidecar builds its HNSW indexes with CREATE INDEX CONCURRENTLY, which can run
-- in no transaction and so in no function: it asks superduper._vector_index_build_steps
-- for the statements, runs them on a connection holding the build's lock
-- (@{locks.build_namespace}, the version's id), then superduper._vector_index_swap.
-- Meanwhile searches read the current version and writes go on: CREATE INDEX
-- CONCURRENTLY blocks neither. The swap is one short transaction.

-- Versions waiting to be built, oldest first.
CREATE OR REPLACE FUNCTION superduper._vector_index_builds()
RETURNS TABLE (id integer, name text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT v.id, v.name FROM superduper._vector_indexes v WHERE v.state = 'building' ORDER BY v.id
$$;

-- What is left to build of a version: each listener version's outputs without
-- a valid HNSW index of it gets a CREATE INDEX CONCURRENTLY; one left invalid
-- by a build cut short (its sidecar gone, the statement cancelled) is dropped
-- first. Words for its full-text search, if it has one, are added here (in
-- this transaction: that takes the outputs table's lock while they are
-- computed). Nothing when the version is gone or built.
CREATE OR REPLACE FUNCTION superduper._vector_index_build_steps(p_build integer)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v superduper._vector_indexes;
  l superduper._listeners;
  v_index pg_index;
BEGIN
  SELECT * INTO v FROM superduper._vector_indexes WHERE id = p_build AND state = 'building';
  IF NOT FOUND THEN
    RETURN;
  END IF;
  FOR l IN SELECT * FROM superduper._listeners WHERE name = v.listener ORDER BY id LOOP
    SELECT i.* INTO v_index FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relnamespace = 'superduper'::regnamespace AND c.relname = superduper._vector_index_name(v.id, l.id);
    IF FOUND AND NOT v_index.indisvalid THEN
      EXECUTE format('DROP INDEX superduper.%I', superduper._vector_index_name(v.id, l.id));
    END IF;
    IF NOT FOUND OR NOT v_index.indisvalid THEN
      RETURN NEXT superduper._vector_index_hnsw_sql(v, l, true);
    END IF;
    IF v.spec ->> 'full_text' IS NOT NULL THEN
      PERFORM superduper._text_words_attach(v, l);
    END IF;
  END LOOP;
END
$$;

-- Swaps a built version in: the current version's search functions and
-- registry row go, the built one becomes current and its search functions are
-- rendered. false (and nothing done) when the version is gone or some listener
-- version's outputs lack its valid HNSW index. No lock on the outputs tables
-- that readers would queue behind: the retired version's HNSW indexes and
-- words are left to superduper._vector_index_leftovers, dropped concurrently.
CREATE OR REPLACE FUNCTION superduper._vector_index_swap(p_build integer)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v superduper._vector_indexes;
  v_current superduper._vector_indexes;
BEGIN
  -- Dropping the words' triggers waits for the outputs' writes in flight, and
  -- holds the next ones back: briefly, or not at all (tried again).
  PERFORM set_config('lock_timeout', '@{vector_indexes.swap_lock_timeout}', true);
  PERFORM pg_advisory_xact_lock(@{locks.namespace}, @{locks.apply});
  SELECT * INTO v FROM superduper._vector_indexes WHERE id = p_build AND state = 'building' FOR UPDATE;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF EXISTS (SELECT 1 FROM superduper._listeners l
             WHERE l.name = v.listener
               AND NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                               WHERE c.relnamespace = 'superduper'::regnamespace
                                 AND c.relname = superduper._vector_index_name(v.id, l.id) AND i.indisvalid)) THEN
    RETURN false;
  END IF;
  SELECT * INTO v_current FROM superduper._vector_indexes WHERE name = v.name AND state = 'current' FOR UPDATE;
  IF FOUND THEN
    PERFORM superduper._vector_index_forget(v_current.id);
  END IF;
  UPDATE superduper._vector_indexes SET state = 'current', updated_at = now() WHERE id = v.id;
  PERFORM superduper._vector_index_code_create(v.id);
  RETURN true;
END
$$;

-- A version retired (swapped out, or a build no longer wanted): its search
-- functions, word triggers and registry row go; its indexes and word columns
-- stay for superduper._vector_index_leftovers, because dropping them here would
-- take the outputs table's exclusive lock, and wait behind a build still under
-- way while every search queued behind it.
CREATE OR REPLACE FUNCTION superduper._vector_index_forget(p_index integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM superduper._vector_index_functions_drop(p_index);
  PERFORM superduper._text_words_stop(p_index);
  DELETE FROM superduper._vector_indexes WHERE id = p_index;
END
$$;

-- What retired versions left on the outputs tables, as statements that drop
-- them without blocking searches: HNSW and GIN indexes of vector index ids no
-- longer registered (DROP INDEX CONCURRENTLY), then their word columns (a
-- catalog change under a short lock timeout, tried again if it times out).
CREATE OR REPLACE FUNCTION superduper._vector_index_leftovers()
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s FROM (
    SELECT 1 AS step, format('DROP INDEX CONCURRENTLY IF EXISTS superduper.%I', c.relname) AS s
    FROM pg_class c
    WHERE c.relnamespace = 'superduper'::regnamespace AND c.relkind = 'i'
      AND c.relname ~ '^_vi[0-9]+_(hnsw|fts)_l[0-9]+$'
      AND NOT EXISTS (SELECT 1 FROM superduper._vector_indexes v WHERE v.id = substring(c.relname FROM '^_vi([0-9]+)_')::integer)
    UNION ALL
    SELECT 2, format('SELECT superduper._vector_index_drop_words(%L, %L)', c.relname, a.attname)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = 'superduper'::regnamespace AND c.relkind IN ('r', 'p') AND NOT a.attisdropped
      AND a.attname ~ '^_words_vi[0-9]+$'
      AND NOT EXISTS (SELECT 1 FROM superduper._vector_indexes v WHERE v.id = substring(a.attname FROM '^_words_vi([0-9]+)$')::integer)
  ) AS x ORDER BY step, s
$$;

CREATE OR REPLACE FUNCTION superduper._vector_index_drop_words(p_table text, p_column text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM set_config('lock_timeout', '@{vector_indexes.leftover_lock_timeout}', true);
  EXECUTE format('ALTER TABLE superduper.%I DROP COLUMN IF EXISTS %I', p_table, p_column);
END
$$;
