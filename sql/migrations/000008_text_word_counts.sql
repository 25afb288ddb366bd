-- The common words of each vector index's full-text words: the lexemes that
-- more than 1% of the rows hold, with how many rows hold them, as the last
-- ANALYZE of the words' column estimated (pg_stats.most_common_elems and their
-- frequencies, which the planner uses too). hybrid()'s full-text half reads
-- them to leave out rows that share only common words with the query
-- (sql/functions/072_text_common_words.sql); read from pg_stats at every query
-- they cost more than the ranking. Refreshed by sidecars as they reconcile,
-- once the index's current outputs table (relation) has been analyzed again.
CREATE TABLE superduper._text_word_stats (
  index_id     integer PRIMARY KEY REFERENCES superduper._vector_indexes (id) ON DELETE CASCADE,
  relation     oid NOT NULL,
  analyzed_at  timestamptz NOT NULL,
  total_rows   real NOT NULL
);

CREATE TABLE superduper._text_common_words (
  index_id  integer NOT NULL REFERENCES superduper._text_word_stats (index_id) ON DELETE CASCADE,
  lexeme    text NOT NULL,
  rows      real NOT NULL,   -- estimated rows holding it
  PRIMARY KEY (index_id, lexeme)
);
