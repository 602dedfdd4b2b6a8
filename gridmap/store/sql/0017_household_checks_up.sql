-- Checks a bulk load pays for on every row, made cheaper without letting anything more in.
--
-- household_geom_lonlat called PostGIS three times per row (ST_IsEmpty, ST_X, ST_Y), each
-- copying the geometry out of the row. Now two bounding-box tests answer for every point
-- well inside ±180/±90 (they read the point's box without building the geometry) and the
-- exact test runs only for the rest. A point's box is rounded outwards to float4, by less
-- than 2e-5 degrees; the inner box stops 1e-3 short of the limits, so no point outside them
-- passes by the box. A NaN coordinate: `&&` takes a box whose x is NaN for empty (it
-- overlaps nothing), and `&<|` (box top at most the inner box's top) is false when y is
-- NaN; an empty point has an empty box. Each falls to the exact test, which refuses it.
--
-- household_county_code_check ran a regular expression on every row's county code. The
-- code is the partition key (LIST, one value per partition): every row carries the value of
-- its partition, and gridmap_household_partitions, which makes them, refuses any value
-- that is not 6 digits. Checking it again on each row checked one value a million times.
--
-- The id is compared byte by byte (COLLATE "C"): building the primary key after a bulk load
-- sorted a million ids through the locale's strcoll, about twice the time of a byte
-- comparison (2.7-3.2 s against 1.3-1.5 s for 1M ids, parallel build, a loaded machine).
-- Ids are keys, not words: equality is the same under both, and in the local cluster
-- (C.UTF-8, code point order) so is their order; comparing with a text of the default
-- collation takes this one.
ALTER TABLE household DROP CONSTRAINT household_county_code_check;
ALTER TABLE household DROP CONSTRAINT household_geom_lonlat;
ALTER TABLE household ADD CONSTRAINT household_geom_lonlat CHECK (
    (geom && 'SRID=4326;POLYGON((-179.999 -89.999, -179.999 89.999, 179.999 89.999, '
             '179.999 -89.999, -179.999 -89.999))'::geometry
     AND geom &<| 'SRID=4326;POLYGON((-179.999 -89.999, -179.999 89.999, 179.999 89.999, '
                  '179.999 -89.999, -179.999 -89.999))'::geometry)
    OR (NOT ST_IsEmpty(geom) AND ST_X(geom) BETWEEN -180 AND 180
        AND ST_Y(geom) BETWEEN -90 AND 90));
ALTER TABLE household ALTER COLUMN id TYPE text COLLATE "C";
