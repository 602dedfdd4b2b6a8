-- What publishing gm_next changes in the communities of gm_changed: each grid added, retired
-- or reshaped, with the workers a retired grid leaves without a grid. A shape is the same
-- when its coordinates are (=, a comparison of bytes) or, failing that, when it covers the
-- same ground (ST_Equals, which builds the shapes' topology: the cost of the statement when
-- it ran for every unchanged grid of a community).
SELECT coalesce(n.code, g.code) AS code,
       CASE WHEN g.code IS NULL THEN 'added'
            WHEN n.code IS NULL THEN 'retired'
            WHEN n.geom = g.geom THEN 'renamed'
            WHEN NOT ST_Equals(n.geom, g.geom) THEN 'reshaped'
            ELSE 'renamed' END AS change,
       (SELECT count(*) FROM grid_worker w WHERE n.code IS NULL AND w.grid_code = g.code)
           AS workers_detached
FROM (SELECT n.* FROM gm_next n JOIN gm_changed c USING (community_code)) AS n
FULL JOIN (SELECT g.* FROM grid g JOIN gm_changed c USING (community_code)) AS g
    USING (code)
WHERE g.code IS NULL OR n.code IS NULL
   OR CASE WHEN n.geom = g.geom THEN false ELSE NOT ST_Equals(n.geom, g.geom) END
   OR n.name <> g.name OR n.kind <> g.kind
   OR n.parent_grid_code IS DISTINCT FROM g.parent_grid_code
ORDER BY 1
