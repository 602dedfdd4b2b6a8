-- What publishing gm_next changes in the communities of gm_changed: each grid added, retired
-- or reshaped, with the workers a retired grid leaves without a grid.
SELECT coalesce(n.code, g.code) AS code,
       CASE WHEN g.code IS NULL THEN 'added'
            WHEN n.code IS NULL THEN 'retired'
            WHEN NOT ST_Equals(n.geom, g.geom) THEN 'reshaped'
            ELSE 'renamed' END AS change,
       (SELECT count(*) FROM grid_worker w WHERE n.code IS NULL AND w.grid_code = g.code)
           AS workers_detached
FROM (SELECT n.* FROM gm_next n JOIN gm_changed c USING (community_code)) AS n
FULL JOIN (SELECT g.* FROM grid g JOIN gm_changed c USING (community_code)) AS g
    USING (code)
WHERE g.code IS NULL OR n.code IS NULL OR NOT ST_Equals(n.geom, g.geom)
   OR n.name <> g.name OR n.kind <> g.kind
   OR n.parent_grid_code IS DISTINCT FROM g.parent_grid_code
ORDER BY 1
