-- The basemap under the grids: building footprints (from OpenStreetMap imports and the demo
-- district), beside the walking network of 0002 that draws the streets. A building may carry
-- a name and an address (searched by /api/places). Changes to both send the change notices
-- of 0003, so the basemap's vector tiles follow them.
CREATE TABLE building (
    id        text PRIMARY KEY,
    name      text,
    address   text,
    source    text NOT NULL,
    geom      geometry(MultiPolygon, 4326) NOT NULL
              CHECK (NOT ST_IsEmpty(geom) AND ST_IsValid(geom)),
    geom_3857 geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED
);
CREATE INDEX building_geom_idx ON building USING gist (geom);
CREATE INDEX building_geom_3857_idx ON building USING gist (geom_3857);
CREATE INDEX building_name_trgm_idx ON building
    USING gin ((coalesce(name, '') || ' ' || coalesce(address, '')) gin_trgm_ops);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['building', 'street_edge'] LOOP
        EXECUTE format('CREATE TRIGGER %1$s_notify_ins AFTER INSERT ON %1$I REFERENCING NEW '
                       'TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION '
                       'gridmap_notify_change()', t);
        EXECUTE format('CREATE TRIGGER %1$s_notify_upd AFTER UPDATE ON %1$I REFERENCING OLD '
                       'TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE '
                       'FUNCTION gridmap_notify_change()', t);
        EXECUTE format('CREATE TRIGGER %1$s_notify_del AFTER DELETE ON %1$I REFERENCING OLD '
                       'TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION '
                       'gridmap_notify_change()', t);
        EXECUTE format('CREATE TRIGGER %1$s_notify_trunc AFTER TRUNCATE ON %1$I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_table()', t);
    END LOOP;
END $$;
