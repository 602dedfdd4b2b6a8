-- Current grids in one tile, with households and residents (grid_load, kept by assignment)
-- and the standard's band for their community. Filtered on the stored Web-Mercator copy
-- with the GiST index. Only grids in the scope parameter (code prefixes as LIKE patterns; NULL: all);
-- without the counts parameter the households and residents are left out (NULL: no attribute).
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
           ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096) AS wide
), rows AS (
    SELECT g.code, g.name, g.kind, g.community_code, d.urban_rural, g.version,
           CASE WHEN %(counts)s THEN coalesce(l.households, 0) END AS households,
           CASE WHEN %(counts)s THEN coalesce(l.residents, 0) END AS residents,
           CASE WHEN d.urban_rural = 'rural' THEN %(rural_low)s ELSE %(urban_low)s END AS band_low,
           CASE WHEN d.urban_rural = 'rural' THEN %(rural_high)s ELSE %(urban_high)s END AS band_high,
           ST_AsMVTGeom(g.geom_3857, bounds.env, 4096, 64, true) AS geom
    FROM grid g
    CROSS JOIN bounds
    JOIN division d ON d.code = g.community_code
    LEFT JOIN grid_load AS l ON l.grid_code = g.code
    WHERE g.geom_3857 && bounds.wide
      AND (%(scope)s::text[] IS NULL OR g.code::text LIKE ANY(%(scope)s::text[]))
), labels AS (
    -- one point per grid for its name, in the one tile that holds it (a polygon's label
    -- would repeat in every tile the grid crosses)
    SELECT g.code, g.name, g.kind, ST_AsMVTGeom(p.pt, bounds.env, 4096, 0, true) AS geom
    FROM grid g
    CROSS JOIN bounds
    CROSS JOIN LATERAL (SELECT ST_PointOnSurface(g.geom_3857) AS pt) AS p
    WHERE g.geom_3857 && bounds.env AND p.pt && bounds.env
      AND (%(scope)s::text[] IS NULL OR g.code::text LIKE ANY(%(scope)s::text[]))
)
SELECT coalesce((SELECT ST_AsMVT(rows, 'grids', 4096, 'geom') FROM rows
                 WHERE geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(labels, 'grid_labels', 4096, 'geom') FROM labels
                 WHERE geom IS NOT NULL), ''::bytea);
