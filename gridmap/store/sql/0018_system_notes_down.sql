-- the English text of every note is in note / detail already: nothing is lost
ALTER TABLE grid_version DROP COLUMN IF EXISTS note_notes;
ALTER TABLE audit_log DROP COLUMN IF EXISTS detail_notes;
ALTER TABLE incident_event DROP COLUMN IF EXISTS notes;
