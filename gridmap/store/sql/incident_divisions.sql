-- Incidents take the community and township of the grid they are assigned to; one outside
-- every grid keeps no community and takes the township whose boundary holds it (if any).
UPDATE incident AS i
SET community_code = g.community_code, township_code = c.parent_code
FROM grid AS g JOIN division AS c ON c.code = g.community_code
WHERE g.code = i.grid_code
  AND (i.community_code IS DISTINCT FROM g.community_code
       OR i.township_code IS DISTINCT FROM c.parent_code);
UPDATE incident AS i
SET community_code = NULL,
    township_code = (SELECT t.code FROM division AS t
                     WHERE t.level = 'township' AND ST_Intersects(t.geom, i.geom)
                     ORDER BY t.code LIMIT 1)
WHERE i.grid_code IS NULL
  AND (i.community_code IS NOT NULL OR i.township_code IS DISTINCT FROM (
      SELECT t.code FROM division AS t
      WHERE t.level = 'township' AND ST_Intersects(t.geom, i.geom) ORDER BY t.code LIMIT 1));
