-- The grids each community in the file will have once it is published (gm_next): the file's
-- grids, and — unless the file replaces its communities whole — the community's current grids
-- the file leaves out, untouched.
CREATE TEMP TABLE gm_next ON COMMIT DROP AS
SELECT s.code, s.name, s.kind, s.community_code, s.parent_grid_code, s.geom
FROM gm_stage AS s
UNION ALL
SELECT g.code, g.name, g.kind, g.community_code, g.parent_grid_code, g.geom
FROM grid AS g
WHERE NOT %(replace)s
  AND g.community_code IN (SELECT community_code FROM gm_stage)
  AND NOT EXISTS (SELECT 1 FROM gm_stage AS s WHERE s.code = g.code)
