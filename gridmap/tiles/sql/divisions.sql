-- Townships or communities (by level) in one tile, those in the scope parameter only (code prefixes as
-- LIKE patterns; NULL: all).
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
           ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096) AS wide
), rows AS (
    SELECT d.code, d.name, d.urban_rural, d.population, d.parent_code,
           ST_AsMVTGeom(d.geom_3857, bounds.env, 4096, 64, true) AS geom
    FROM division d CROSS JOIN bounds
    WHERE d.level = %(level)s AND d.geom_3857 && bounds.wide
      AND (%(scope)s::text[] IS NULL OR d.code::text LIKE ANY(%(scope)s::text[]))
)
SELECT ST_AsMVT(rows, %(layer)s, 4096, 'geom') FROM rows WHERE geom IS NOT NULL;
