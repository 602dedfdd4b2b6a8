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
), labels AS (
    -- one point per division for its name, in the one tile that holds it
    SELECT d.code, d.name, d.population, ST_AsMVTGeom(p.pt, bounds.env, 4096, 0, true) AS geom
    FROM division d
    CROSS JOIN bounds
    CROSS JOIN LATERAL (SELECT ST_PointOnSurface(d.geom_3857) AS pt) AS p
    WHERE d.level = %(level)s AND d.geom_3857 && bounds.env AND p.pt && bounds.env
      AND (%(scope)s::text[] IS NULL OR d.code::text LIKE ANY(%(scope)s::text[]))
)
SELECT coalesce((SELECT ST_AsMVT(rows, %(layer)s, 4096, 'geom') FROM rows
                 WHERE geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(labels, %(layer)s::text || '_labels', 4096, 'geom') FROM labels
                 WHERE geom IS NOT NULL), ''::bytea);
