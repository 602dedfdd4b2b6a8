-- Photos of incidents. The image itself is a file under the deployment's photo folder
-- (settings.photo_dir), named by the photo's id; this row says which case and which step of
-- its timeline it came with, its type (checked from its content), size, pixels and digest.
-- Rows are written in the transaction of the step; the file is put in place in the same
-- transaction, just before it commits (gridmap.store.photos).
CREATE TABLE incident_photo (
    id          text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    incident_id text NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    event_id    bigint NOT NULL REFERENCES incident_event (id) ON DELETE CASCADE,
    media_type  text NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png', 'image/webp')),
    bytes       integer NOT NULL CHECK (bytes > 0),
    width       integer NOT NULL CHECK (width > 0),
    height      integer NOT NULL CHECK (height > 0),
    sha256      char(64) NOT NULL,
    taken_by    text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX incident_photo_incident_idx ON incident_photo (incident_id, at);
CREATE INDEX incident_photo_event_idx ON incident_photo (event_id);
