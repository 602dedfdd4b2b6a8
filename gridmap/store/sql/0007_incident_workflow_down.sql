DROP TABLE IF EXISTS incident_event;
DROP FUNCTION IF EXISTS gridmap_append_only();
DROP SEQUENCE IF EXISTS incident_number_seq;
DROP INDEX IF EXISTS incident_grid_idx, incident_township_idx;
ALTER TABLE incident DROP COLUMN IF EXISTS community_code, DROP COLUMN IF EXISTS township_code,
    DROP COLUMN IF EXISTS assignee, DROP COLUMN IF EXISTS reporter, DROP COLUMN IF EXISTS urgent,
    DROP COLUMN IF EXISTS version, DROP COLUMN IF EXISTS updated_at,
    DROP COLUMN IF EXISTS dispatch_due, DROP COLUMN IF EXISTS handle_due,
    DROP COLUMN IF EXISTS verify_due, DROP COLUMN IF EXISTS closed_at;
UPDATE incident SET status = 'dispatched' WHERE status = 'returned';
ALTER TABLE incident DROP CONSTRAINT incident_status_check;
ALTER TABLE incident ADD CONSTRAINT incident_status_check CHECK (status IN (
    'collected', 'registered', 'cancelled', 'dispatched', 'handling', 'reported', 'verified',
    'closed', 'evaluated'));
