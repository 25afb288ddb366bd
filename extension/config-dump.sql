-- Registry tables hold user data (specs, models, queue): pg_dump must dump their
-- rows even though the tables belong to the extension.
SELECT pg_catalog.pg_extension_config_dump('superduper._artifacts', '');
-- The default embedder is created by the extension script itself.
SELECT pg_catalog.pg_extension_config_dump('superduper._models', 'WHERE name <> ''default-embedder''');
SELECT pg_catalog.pg_extension_config_dump('superduper._listeners', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._queue', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._backfill', '');
SELECT pg_catalog.pg_extension_config_dump('superduper._failures', '');
