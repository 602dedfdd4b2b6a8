DROP INDEX IF EXISTS household_address_trgm_idx;
