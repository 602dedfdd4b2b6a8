-- Households and residents per grid, as assigned, kept by `gridmap assign` so that maps and
-- tiles need not count households on every request.
CREATE TABLE grid_load (
    grid_code  char(15) PRIMARY KEY REFERENCES grid (code) ON DELETE CASCADE,
    households integer NOT NULL CHECK (households >= 0),
    residents  integer NOT NULL CHECK (residents >= 0)
);

-- a change of load makes the tiles of those grids stale: notice with their bounding box
-- (rows removed with their grid need none: the grid's own notice covers them)
CREATE FUNCTION gridmap_notify_load() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    box box2d;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT ST_Extent(g.geom) INTO box FROM old_rows o JOIN grid g ON g.code = o.grid_code;
    ELSE
        SELECT ST_Extent(g.geom) INTO box FROM new_rows n JOIN grid g ON g.code = n.grid_code;
    END IF;
    PERFORM gridmap_send_change(TG_TABLE_NAME, box);
    RETURN NULL;
END $$;
CREATE TRIGGER grid_load_notify_ins AFTER INSERT ON grid_load REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_load();
CREATE TRIGGER grid_load_notify_upd AFTER UPDATE ON grid_load REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_load();
CREATE TRIGGER grid_load_notify_del AFTER DELETE ON grid_load REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_load();

INSERT INTO grid_load (grid_code, households, residents)
SELECT grid_code, count(*), sum(residents) FROM household
WHERE grid_code IS NOT NULL GROUP BY grid_code;
