-- The grid of every row of a point table by gridmap's rule: the grids whose closed
-- polygon contains the point (ST_Intersects); an exclusive grid before a comprehensive one;
-- then the lowest code. The same rule as gridmap.analysis.assign.
SELECT DISTINCT ON (p.id) p.id, g.code
FROM grid AS g
JOIN {points} AS p ON ST_Intersects(g.geom, p.geom)
WHERE g.kind IN ('exclusive', 'comprehensive')
ORDER BY p.id, (g.kind <> 'exclusive'), g.code
