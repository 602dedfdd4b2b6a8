-- The incident workflow: where a case was routed (grid, community, township, the worker
-- responsible), its stage with a version for optimistic locking, its deadlines, and an
-- append-only timeline of every step (who, when, what, why).

ALTER TABLE incident DROP CONSTRAINT incident_status_check;
ALTER TABLE incident ADD CONSTRAINT incident_status_check CHECK (status IN (
    'collected', 'registered', 'cancelled', 'dispatched', 'handling', 'returned', 'reported',
    'verified', 'closed', 'evaluated'));
ALTER TABLE incident
    ADD COLUMN community_code char(12) REFERENCES division (code) ON UPDATE CASCADE,
    ADD COLUMN township_code  char(12) REFERENCES division (code) ON UPDATE CASCADE,
    ADD COLUMN assignee       text REFERENCES grid_worker (id) ON DELETE SET NULL,
    ADD COLUMN reporter       text CHECK (length(reporter) <= 200),
    ADD COLUMN urgent         boolean NOT NULL DEFAULT false,
    ADD COLUMN version        integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN dispatch_due   timestamptz,
    ADD COLUMN handle_due     timestamptz,
    ADD COLUMN verify_due     timestamptz,
    ADD COLUMN closed_at      timestamptz;
CREATE INDEX incident_grid_idx ON incident (grid_code);
CREATE INDEX incident_township_idx ON incident (township_code);

-- imported cases get their community and township from their grid
UPDATE incident i SET community_code = g.community_code,
                      township_code = left(g.community_code, 9) || '000'
FROM grid g WHERE g.code = i.grid_code;

CREATE SEQUENCE incident_number_seq;

CREATE TABLE incident_event (
    id          bigserial PRIMARY KEY,
    incident_id text NOT NULL REFERENCES incident (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text,           -- account name; NULL: an import
    role        text,
    action      text NOT NULL,  -- collect, register, dispatch, accept, return, …, route
    from_stage  text,
    to_stage    text NOT NULL,
    grid_code   char(15),       -- where the case is routed after this step
    assignee    text,
    note        text CHECK (length(note) <= 2000)
);
CREATE INDEX incident_event_incident_idx ON incident_event (incident_id, at);

CREATE FUNCTION gridmap_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER incident_event_append_only BEFORE UPDATE OR DELETE ON incident_event
    FOR EACH ROW EXECUTE FUNCTION gridmap_append_only();
CREATE TRIGGER incident_event_no_truncate BEFORE TRUNCATE ON incident_event
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON incident_event FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON incident_event FROM CURRENT_USER;
