-- Assign every row of a point table ({points}) to its grid by gridmap's rule: the grids whose
-- closed polygon contains the point (ST_Intersects); an exclusive grid before a comprehensive
-- one; then the lowest code. The same rule as gridmap.analysis.assign.
--
-- The join keeps the few grids on the outer side and probes the points' GiST index for each:
-- the planner's default parallel plan (points outer, a parallel scan probing grids) was
-- measured 3x slower, so parallel workers are switched off for this transaction.
SET LOCAL max_parallel_workers_per_gather = 0;

CREATE TEMP TABLE gm_assigned ON COMMIT DROP AS
SELECT DISTINCT ON (p.id) p.id, g.code
FROM grid AS g
JOIN {points} AS p ON ST_Intersects(g.geom, p.geom)
WHERE g.kind IN ('exclusive', 'comprehensive')
ORDER BY p.id, (g.kind <> 'exclusive'), g.code;

CREATE INDEX ON gm_assigned (id);
ANALYZE gm_assigned;

UPDATE {points} AS p SET grid_code = a.code
FROM gm_assigned AS a
WHERE a.id = p.id AND p.grid_code IS DISTINCT FROM a.code;

UPDATE {points} AS p SET grid_code = NULL
WHERE p.grid_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM gm_assigned a WHERE a.id = p.id);
