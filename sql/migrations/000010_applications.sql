-- Applications: a named group of components (models, listeners, vector
-- indexes, and any type added later) applied, versioned and removed as one
-- (sql/functions/042_applications.sql).
CREATE TABLE superduper._applications (
  name         text PRIMARY KEY,
  -- As applied: {"type": "application", "name": ..., "components": [spec, ...]}.
  spec         jsonb NOT NULL,
  -- Counts the applies that changed the spec.
  version      integer NOT NULL DEFAULT 1,
  -- Applied from a template: the template ("variables" declared, placeholders
  -- in place) and the value each variable took; the spec is what it rendered.
  template     jsonb,
  variables    jsonb,
  spec_version integer NOT NULL DEFAULT 1,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Which components an application holds, in the order it applies them (so
-- the reverse order removes them). A component may belong to several.
CREATE TABLE superduper._application_components (
  application text NOT NULL REFERENCES superduper._applications (name) ON DELETE CASCADE,
  position    integer NOT NULL,
  type        text NOT NULL,
  name        text NOT NULL,
  PRIMARY KEY (application, type, name)
);
CREATE INDEX ON superduper._application_components (type, name);
