-- What gridmap itself writes, as message keys with values (gridmap/domain/notes.py), so that
-- each reader sees it in their language: [{"key": "on_edge", "values": {"grids": [...]}}].
-- The English text stays in note / detail (what SQL, exports and the down migration read);
-- a row without notes (a person's note, a row from before) shows its text as it is.
-- Adding a column without a default rewrites no row: the append-only trigger of
-- incident_event is not touched.
ALTER TABLE incident_event ADD COLUMN notes jsonb
    CHECK (jsonb_typeof(notes) = 'array');
ALTER TABLE audit_log ADD COLUMN detail_notes jsonb
    CHECK (jsonb_typeof(detail_notes) = 'array');
ALTER TABLE grid_version ADD COLUMN note_notes jsonb
    CHECK (jsonb_typeof(note_notes) = 'array');
