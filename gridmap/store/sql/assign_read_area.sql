-- The points of {points} whose grid can have changed after a redraw, as (id, x, y, stored
-- grid): those in the box of an old or a new shape of a changed grid (gm_area holds both)
-- and those stored in one of these grids. Any other point lies in the same grids as before,
-- so by the rule it keeps its grid; a point in no grid outside the boxes stays in none.
-- (Points are stored assigned since imports assign them; migration 0019 assigned those an
-- older gridmap had left without a grid, so the area is all a publish need look at.)
SELECT p.id, ST_X(p.geom) AS x, ST_Y(p.geom) AS y, p.grid_code
FROM gm_area AS a JOIN {points} AS p ON p.geom && a.geom
UNION
SELECT p.id, ST_X(p.geom), ST_Y(p.geom), p.grid_code FROM {points} AS p
WHERE p.grid_code IN (SELECT code FROM gm_area)
