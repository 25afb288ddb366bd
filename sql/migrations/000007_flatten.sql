-- A listener version whose model returns a list per row (its output declares
-- "flatten": true) writes one output row per element, keyed by the source's
-- primary key and the element's _position. Kept on the version, not read from
-- the model, because a frozen version keeps its table's shape when its model
-- changes.
ALTER TABLE superduper._listeners ADD COLUMN flatten boolean NOT NULL DEFAULT false;
