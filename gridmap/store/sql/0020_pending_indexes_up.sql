-- Indexes a bulk import leaves to build after its commit (CREATE INDEX CONCURRENTLY, so that
-- reads and writes go on meanwhile), recorded in the import's own transaction and removed
-- once built. An import stopped between its commit and that build leaves its row here and
-- the next import builds it; before this table nothing did, and the layer was searched
-- without its index from then on.
CREATE TABLE pending_index (
    name text PRIMARY KEY,
    definition text NOT NULL CHECK (definition LIKE 'CREATE INDEX %'),
    since timestamptz NOT NULL DEFAULT now()
);
