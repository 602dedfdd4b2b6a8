-- The basemap's building footprints in one tile, for everyone (a footprint is no one's
-- personal data), from zoom 13 on (below it a footprint is a speck). Filtered on the stored
-- Web-Mercator copy with the GiST index.
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
           ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096) AS wide
), rows AS (
    SELECT b.id, b.name,
           ST_AsMVTGeom(b.geom_3857, bounds.env, 4096, 64, true) AS geom
    FROM building b CROSS JOIN bounds
    WHERE %(z)s >= 13 AND b.geom_3857 && bounds.wide
)
SELECT ST_AsMVT(rows, 'buildings', 4096, 'geom') FROM rows WHERE geom IS NOT NULL;
