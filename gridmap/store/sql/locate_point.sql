-- The grids containing one WGS84 point, the winner by gridmap's rule first.
SELECT g.code, g.name, g.kind, g.community_code
FROM grid AS g
WHERE g.kind IN ('exclusive', 'comprehensive')
  AND ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
ORDER BY (g.kind <> 'exclusive'), g.code;
