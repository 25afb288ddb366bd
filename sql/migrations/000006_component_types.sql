-- Component types are table-driven: superduper.apply dispatches on a spec's
-- "type" through this table, and superduper.remove looks a name up in each
-- type's registry table, in lookup_order. A type registers itself here from its
-- own function file (a row per type, written on every install), with the
-- functions its name implies: superduper._apply_<type>(spec jsonb, search_path
-- text[]) and superduper._remove_<type>(name text, keep_outputs boolean,
-- cascade boolean), both returning jsonb.
CREATE TABLE superduper._component_types (
  type           text PRIMARY KEY,
  -- "vector index": how messages name it.
  label          text NOT NULL,
  -- The table of its registry rows, with columns "name" (remove() looks names up
  -- there) and "spec_version" (set by apply).
  registry_table text NOT NULL,
  -- remove() looks a name up in the types in this order, and lists them so.
  lookup_order   integer NOT NULL UNIQUE,
  -- The spec version this layer writes and reads; older specs are upgraded by
  -- superduper._spec_<type>_<n>_to_<n+1>(jsonb), newer ones refused.
  spec_version   integer NOT NULL CHECK (spec_version >= 1)
);

-- Every stored spec carries the version it was written in.
ALTER TABLE superduper._models ADD COLUMN spec_version integer NOT NULL DEFAULT 1;
ALTER TABLE superduper._listeners ADD COLUMN spec_version integer NOT NULL DEFAULT 1;
ALTER TABLE superduper._vector_indexes ADD COLUMN spec_version integer NOT NULL DEFAULT 1;

-- The dispatch calls every type's functions with the same arguments: these
-- took fewer, and are created again with the common ones.
DROP FUNCTION IF EXISTS superduper._apply_model(jsonb);
DROP FUNCTION IF EXISTS superduper._apply_vector_index(jsonb);
DROP FUNCTION IF EXISTS superduper._remove_model(text);
