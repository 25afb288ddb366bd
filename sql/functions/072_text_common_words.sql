-- Common words in hybrid()'s full-text half. A question's words are ORed (see
-- ../templates/text_search.sql), so one word found in a tenth of the chunks
-- makes a tenth of the chunks candidates, every one of them ranked to keep the
-- best few: measured on 26,546 chunks, 1,750 matches a question and 15 ms a
-- search, five times the vector half. Such a word says little about which
-- chunk answers (ts_rank has no inverse document frequency), so, as
-- Elasticsearch's common-terms query did: a word of the query held by more than
-- 1% of the rows, and by more than ten times as many rows as the candidates
-- asked for, still counts in the ranking, but a row must share at least one
-- less common word with the query to be a candidate; a query of common words
-- only needs all of them. How many rows hold a word is what the last ANALYZE of
-- the words' column estimated (pg_stats), kept in superduper._text_common_words;
-- until a table has been analyzed every word is uncommon (small tables never
-- have common words: the floor is ten times the candidates).

-- The queries of the full-text half for p_query: rank_query, every lexeme of
-- it ORed, ranks; match_query, the lexemes that are not common in p_relation
-- ORed, or every lexeme ANDed when all are common, picks the candidates;
-- pair_query picks the candidates that hold two lexemes of the query or more
-- (every pair ANDed but those of two common lexemes, the pairs ORed), which
-- ts_rank ranks above all others (see ../templates/text_search.sql): NULL
-- when no pair has an uncommon lexeme, or when the query has more than 16
-- lexemes (120 pairs: past that, matching the pairs would cost about what
-- ranking fewer rows saves). NULL for all when the query has no lexemes (stop
-- words only): nothing matches. It reads superduper._text_common_words, so it
-- runs with its owner's rights.
-- (It was _text_query, with two OUT parameters, before pair_query; never
-- released, dropped from databases installed meanwhile.)
DROP FUNCTION IF EXISTS superduper._text_query(integer, regclass, regconfig, text, integer);
CREATE OR REPLACE FUNCTION superduper._text_queries(p_index integer, p_relation regclass, p_config regconfig, p_query text, p_n integer,
                                                    OUT rank_query tsquery, OUT match_query tsquery, OUT pair_query tsquery)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Left to choose, PostgreSQL planned the statement again at every call (0.25 ms
-- of a 0.35 ms call, measured).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  v_lexemes text[];
  v_common boolean[];
BEGIN
  -- One statement (each costs): every lexeme quoted as tsquery's input wants
  -- it (quote and backslash doubled), so that it is taken as it is, not parsed
  -- again; a word kept in _text_common_words is held by more than 1% of the
  -- rows, so it is common if by more than ten times the candidates too.
  SELECT string_agg(x.quoted, ' | ')::tsquery,
         CASE WHEN bool_and(x.common) THEN string_agg(x.quoted, ' & ')
              ELSE string_agg(x.quoted, ' | ') FILTER (WHERE NOT x.common) END::tsquery,
         array_agg(x.quoted), array_agg(x.common)
  INTO rank_query, match_query, v_lexemes, v_common
  FROM (
    SELECT '''' || replace(replace(l, '\', '\\'), '''', '''''') || '''' AS quoted,
           EXISTS (SELECT 1 FROM superduper._text_word_stats AS s
                   JOIN superduper._text_common_words AS w ON w.index_id = s.index_id
                   WHERE s.index_id = p_index AND s.relation = p_relation AND w.lexeme = l AND w.rows > 10 * p_n) AS common
    FROM unnest(tsvector_to_array(to_tsvector(p_config, p_query))) AS l
  ) AS x;
  IF cardinality(v_lexemes) BETWEEN 2 AND 16 THEN
    SELECT string_agg('(' || a.quoted || ' & ' || b.quoted || ')', ' | ')::tsquery INTO pair_query
    FROM unnest(v_lexemes, v_common) WITH ORDINALITY AS a(quoted, common, i)
    JOIN unnest(v_lexemes, v_common) WITH ORDINALITY AS b(quoted, common, j) ON a.i < b.j
    WHERE NOT (a.common AND b.common);
  END IF;
END
$$;

-- Reads again the common words of every vector index with full-text search
-- whose current outputs table was analyzed since they were last read (or has
-- become another table: a new listener version). Called by sidecars as they
-- reconcile; cheap when nothing was analyzed. Returns how many it read.
CREATE OR REPLACE FUNCTION superduper._text_stats_refresh()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  v_read integer := 0;
BEGIN
  FOR r IN
    SELECT v.id, c.oid AS relation, c.reltuples, c.relname, superduper._text_words_column(v.id) AS words_column,
           greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid)) AS analyzed_at
    FROM superduper._vector_indexes AS v
    JOIN superduper._listeners AS l ON l.name = v.listener AND l.state = 'current'
    JOIN pg_class AS c ON c.relnamespace = 'superduper'::regnamespace AND c.relname = l.output_table
    WHERE v.spec ->> 'full_text' IS NOT NULL AND v.state = 'current'
      AND NOT EXISTS (SELECT 1 FROM superduper._text_word_stats AS s
                      WHERE s.index_id = v.id AND s.relation = c.oid
                        AND s.analyzed_at IS NOT DISTINCT FROM greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid)))
  LOOP
    CONTINUE WHEN r.analyzed_at IS NULL OR r.reltuples < 0;
    INSERT INTO superduper._text_word_stats AS s (index_id, relation, analyzed_at, total_rows)
    VALUES (r.id, r.relation, r.analyzed_at, r.reltuples)
    ON CONFLICT (index_id) DO UPDATE
      SET relation = excluded.relation, analyzed_at = excluded.analyzed_at, total_rows = excluded.total_rows;
    DELETE FROM superduper._text_common_words WHERE index_id = r.id;
    INSERT INTO superduper._text_common_words (index_id, lexeme, rows)
    SELECT r.id, x.lexeme, round(x.frequency * r.reltuples)
    FROM pg_stats AS s, unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS x(lexeme, frequency)
    WHERE s.schemaname = 'superduper' AND s.tablename = r.relname AND s.attname = r.words_column
      AND x.lexeme IS NOT NULL AND x.frequency > 0.01;
    v_read := v_read + 1;
  END LOOP;
  RETURN v_read;
END
$$;
