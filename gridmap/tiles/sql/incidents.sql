-- Incidents in one tile, those of grids (or, outside every grid, of townships) in the scope
-- parameter only (NULL: all).
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
           ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096), 4326) AS wide
), rows AS (
    SELECT i.id, i.category, i.status, i.reported_at::text AS reported_at, i.grid_code,
           ST_AsMVTGeom(ST_Transform(i.geom, 3857), bounds.env, 4096, 64, true) AS geom
    FROM incident i CROSS JOIN bounds
    WHERE i.geom && bounds.wide
      AND (%(scope)s::text[] IS NULL
           OR coalesce(i.grid_code, i.township_code)::text LIKE ANY(%(scope)s::text[]))
)
SELECT ST_AsMVT(rows, 'incidents', 4096, 'geom') FROM rows WHERE geom IS NOT NULL;
