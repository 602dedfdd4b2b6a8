-- Current grids in one tile, with households and residents (grid_load, kept by assignment)
-- and the standard's band for their community. Filtered on the stored Web-Mercator copy
-- with the GiST index.
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
           ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096) AS wide
), rows AS (
    SELECT g.code, g.name, g.kind, g.community_code, d.urban_rural, g.version,
           coalesce(l.households, 0) AS households, coalesce(l.residents, 0) AS residents,
           CASE WHEN d.urban_rural = 'rural' THEN %(rural_low)s ELSE %(urban_low)s END AS band_low,
           CASE WHEN d.urban_rural = 'rural' THEN %(rural_high)s ELSE %(urban_high)s END AS band_high,
           ST_AsMVTGeom(g.geom_3857, bounds.env, 4096, 64, true) AS geom
    FROM grid g
    CROSS JOIN bounds
    JOIN division d ON d.code = g.community_code
    LEFT JOIN grid_load AS l ON l.grid_code = g.code
    WHERE g.geom_3857 && bounds.wide
)
SELECT ST_AsMVT(rows, 'grids', 4096, 'geom') FROM rows WHERE geom IS NOT NULL;
