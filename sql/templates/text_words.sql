-- The words of one vector index's full-text search, kept beside its vectors:
-- rendered per index declared with "full_text" by
-- sql/functions/070_vector_indexes.sql (superduper._vector_indexes_attach), for
-- each version of the indexed listener's outputs table.
--
-- Each output row holds, in {{words_column}}, the tsvector of the text its
-- vector was computed from (the listener's key column in its source), set
-- when the vector is written. So the full-text half of hybrid() ranks stored
-- tsvectors, and reads the same text the vector half embedded: ranking with
-- to_tsvector() over the source parsed every matching row's text again, which
-- measured ~100 µs a row (25× like() on 26,546 chunks).
CREATE OR REPLACE FUNCTION {{fn_words}}()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS {{q}}
BEGIN
  NEW.{{words_column}} := (SELECT pg_catalog.to_tsvector({{config}}::regconfig, src.{{text_column}}) FROM {{source}} AS src WHERE {{pk_eq_src_new}});
  RETURN NEW;
END
{{q}};
