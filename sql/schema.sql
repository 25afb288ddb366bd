-- The installer's first statement. (CREATE EXTENSION creates the schema itself,
-- from the control file, so the extension script does not include this file.)
CREATE SCHEMA IF NOT EXISTS superduper;
