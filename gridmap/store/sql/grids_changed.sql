-- The communities whose grids in gm_next differ from their current grids: only these get a
-- new version (re-importing the same file changes nothing).
CREATE TEMP TABLE gm_changed ON COMMIT DROP AS
SELECT c.community_code
FROM (SELECT DISTINCT community_code FROM gm_next) AS c
WHERE EXISTS (
    (SELECT code, name, kind, parent_grid_code, ST_AsBinary(geom) FROM gm_next s
     WHERE s.community_code = c.community_code
     EXCEPT
     SELECT code, name, kind, parent_grid_code, ST_AsBinary(geom) FROM grid g
     WHERE g.community_code = c.community_code)
    UNION ALL
    (SELECT code, name, kind, parent_grid_code, ST_AsBinary(geom) FROM grid g
     WHERE g.community_code = c.community_code
     EXCEPT
     SELECT code, name, kind, parent_grid_code, ST_AsBinary(geom) FROM gm_next s
     WHERE s.community_code = c.community_code));
