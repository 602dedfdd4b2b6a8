-- The checks of 0015: three PostGIS calls and a regular expression on every row; the id in
-- the database's collation.
ALTER TABLE household ALTER COLUMN id TYPE text COLLATE "default";
ALTER TABLE household DROP CONSTRAINT household_geom_lonlat;
ALTER TABLE household ADD CONSTRAINT household_geom_lonlat CHECK (
    NOT ST_IsEmpty(geom) AND ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90);
ALTER TABLE household ADD CONSTRAINT household_county_code_check
    CHECK (county_code ~ '^[0-9]{6}$');
