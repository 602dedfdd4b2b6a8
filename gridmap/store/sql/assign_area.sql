-- The area a publish can move points in: the current and the next shape of every grid of
-- the communities whose grids change (gm_changed, gm_next), taken before they are written.
CREATE TEMP TABLE gm_area ON COMMIT DROP AS
SELECT g.code, g.geom FROM grid AS g JOIN gm_changed AS c USING (community_code)
UNION ALL
SELECT n.code, n.geom FROM gm_next AS n JOIN gm_changed AS c USING (community_code);
ANALYZE gm_area;
