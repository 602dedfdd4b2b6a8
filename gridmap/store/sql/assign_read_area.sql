-- The points of {points} whose grid can have changed after a redraw, as (id, x, y, stored
-- grid): those in the box of an old or a new shape of a changed grid (gm_area holds both),
-- those stored in one of these grids, and those in no grid yet. Any other point lies in the
-- same grids as before, so by the rule it keeps its grid.
SELECT p.id, ST_X(p.geom) AS x, ST_Y(p.geom) AS y, p.grid_code
FROM gm_area AS a JOIN {points} AS p ON p.geom && a.geom
UNION
SELECT p.id, ST_X(p.geom), ST_Y(p.geom), p.grid_code FROM {points} AS p
WHERE p.grid_code IN (SELECT code FROM gm_area) OR p.grid_code IS NULL
