-- What pg_dump must carry of an extension's tables. Tables and sequences that
-- belong to the extension are created by CREATE EXTENSION on restore, so pg_dump
-- dumps their rows (and a sequence's position) only when they are marked here.
-- Every table the migrations create is either marked here or listed below with
-- why not; tests/backends/postgres/extension.test.ts dumps and restores a database
-- with the extension and compares its rows. A row the extension script writes
-- itself must be excluded by the condition, or the restore would insert it twice.

-- The registry: model files, models, listeners, vector indexes, applications.
SELECT pg_catalog.pg_extension_config_dump('superduper._artifacts', '');
-- The default embedder is created by the extension script itself.
SELECT pg_catalog.pg_extension_config_dump('superduper._models', 'WHERE name <> ''default-embedder''');
SELECT pg_catalog.pg_extension_config_dump('superduper._listeners', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._vector_indexes', '');
-- Applications and the components each holds.
SELECT pg_catalog.pg_extension_config_dump('superduper._applications', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._application_components', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._schedules', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._schedule_runs', '');
-- Trainers, their runs (each with its artifact and metrics) and deployments.
SELECT pg_catalog.pg_extension_config_dump('superduper._trainers', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._training_runs', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._training_deployments', '');
-- Work: the change log not yet drained, the queue, the backfill cursors and the
-- ranges in flight, the failures.
SELECT pg_catalog.pg_extension_config_dump('superduper._changes', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._queue', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._backfill_cursor', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._backfill', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._failures', '');
-- Per-database settings; the code version is the script's own row.
SELECT pg_catalog.pg_extension_config_dump('superduper._meta', 'WHERE key <> ''code_version''');
-- Sequences behind that state: queue ids are the stamps of the outputs (a restored
-- database that started them again at 1 would refuse every new output as older
-- than the one it has), and listener and vector index ids name their tables' rows
-- and their rendered functions.
SELECT pg_catalog.pg_extension_config_dump('superduper._change_id', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('superduper._listeners', 'id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('superduper._vector_indexes', 'id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('superduper._training_deployments', 'id')::pg_catalog.regclass, '');

-- Not dumped:
--   _migrations, _templates   written by the extension script (its version's rows)
--   _workers                  the sidecars running now; a restored database has none
--   _requests                 model calls from SQL in flight (milliseconds; the caller
--                             waits on the database it asked)
--   _answers, _embed_cache,   answers, query embeddings and rag() answers kept to spare
--   _answer_cache             a model call; a miss computes them again
--   _text_word_stats,         hybrid()'s common words, read from the last ANALYZE of
--   _text_common_words        an outputs table (by its oid, which a restore changes):
--                             read again once the restored table is analyzed
