-- Facilities in one tile, those of grids in the scope parameter only (NULL: all) (points are stored in EPSG:4326: filter there, project the few).
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
           ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096), 4326) AS wide
), rows AS (
    SELECT f.id, f.type, f.name, f.capacity, f.grid_code,
           ST_AsMVTGeom(ST_Transform(f.geom, 3857), bounds.env, 4096, 64, true) AS geom
    FROM facility f CROSS JOIN bounds
    WHERE f.geom && bounds.wide
      AND (%(scope)s::text[] IS NULL OR f.grid_code::text LIKE ANY(%(scope)s::text[]))
)
SELECT ST_AsMVT(rows, 'facilities', 4096, 'geom') FROM rows WHERE geom IS NOT NULL;
