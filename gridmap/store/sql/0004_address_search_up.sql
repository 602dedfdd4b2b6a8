-- Address search (pg_trgm): partial and typo-tolerant, Chinese and Latin script.
CREATE INDEX IF NOT EXISTS household_address_trgm_idx ON household USING gin (address gin_trgm_ops);
