-- Component identity (sql/functions/044_identity.sql): each type names the
-- fields of its spec whose change leaves the component's outputs valid (updated
-- in place); a change anywhere else is breaking (a new version, built beside
-- the current one and swapped in when complete).
ALTER TABLE superduper._component_types ADD COLUMN non_breaking text[] NOT NULL DEFAULT '{}';

-- Vector indexes are versioned like listeners: a breaking change (another
-- listener, measure or graph shape) adds a 'building' version whose HNSW
-- indexes a sidecar builds without blocking searches or writes (CREATE INDEX
-- CONCURRENTLY); it replaces the 'current' version when they are all valid.
ALTER TABLE superduper._vector_indexes
  ADD COLUMN version integer NOT NULL DEFAULT 1,
  ADD COLUMN state text NOT NULL DEFAULT 'current' CHECK (state IN ('current', 'building'));
ALTER TABLE superduper._vector_indexes DROP CONSTRAINT _vector_indexes_name_key;
CREATE UNIQUE INDEX _vector_indexes_current ON superduper._vector_indexes (name) WHERE state = 'current';
CREATE UNIQUE INDEX _vector_indexes_building ON superduper._vector_indexes (name) WHERE state = 'building';
