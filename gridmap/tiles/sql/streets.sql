-- The basemap's streets (the walking network's edges) in one tile, for everyone: streets
-- are no one's personal data and belong to no division. Stored in EPSG:4326: filter there
-- with the GiST index, project the few. Short edges are left out at low zooms, where
-- they would be a smudge of sub-pixel lines. Each edge carries its street's name; a
-- second layer, ``street_labels``, holds each named street of the tile as one merged line
-- (from zoom 13), so that MapLibre lays its name along the street once, not on every short
-- edge between two junctions.
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
           ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096), 4326) AS wide
), rows AS (
    SELECT e.id, e.length_m, e.name,
           ST_AsMVTGeom(ST_Transform(e.geom, 3857), bounds.env, 4096, 64, true) AS geom
    FROM street_edge e CROSS JOIN bounds
    WHERE e.geom && bounds.wide AND (%(z)s >= 14 OR e.length_m >= 40)
), labels AS (
    SELECT e.name,
           ST_AsMVTGeom(ST_Transform(ST_LineMerge(ST_Collect(e.geom)), 3857), bounds.env,
                        4096, 64, true) AS geom
    FROM street_edge e CROSS JOIN bounds
    WHERE e.name IS NOT NULL AND e.geom && bounds.wide AND %(z)s >= 13
    GROUP BY e.name, bounds.env
)
SELECT coalesce((SELECT ST_AsMVT(rows, 'streets', 4096, 'geom') FROM rows
                 WHERE geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(labels, 'street_labels', 4096, 'geom') FROM labels
                 WHERE geom IS NOT NULL), ''::bytea);
