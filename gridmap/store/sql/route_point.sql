-- Where a reported point belongs: every grid holding it, the winner by gridmap's rule first
-- (exclusive before comprehensive, then the lowest code), with its community, township and
-- the worker responsible (full-time first, then the grid head); outside every grid, the
-- township whose boundary holds it (grid_code NULL). No row: outside the district.
WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom),
grids AS (
    SELECT g.code AS grid_code, g.community_code, c.parent_code AS township_code,
           c.urban_rural, g.kind
    FROM grid g JOIN division c ON c.code = g.community_code, p
    WHERE g.kind IN ('exclusive', 'comprehensive') AND ST_Intersects(g.geom, p.geom)
)
SELECT grid_code, community_code, township_code, urban_rural,
       (SELECT w.id FROM grid_worker w WHERE w.grid_code = grids.grid_code
          AND w.role IN ('full_time', 'grid_head')
        ORDER BY w.role <> 'full_time', w.id LIMIT 1) AS assignee,
       kind <> 'exclusive' AS later
FROM grids
UNION ALL
SELECT NULL, NULL, t.code, t.urban_rural, NULL, true
FROM division t, p
WHERE t.level = 'township' AND ST_Intersects(t.geom, p.geom)
  AND NOT EXISTS (SELECT 1 FROM grids)
ORDER BY later, grid_code NULLS LAST
