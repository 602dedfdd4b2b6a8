-- Every point of {points} as (id, x, y, stored grid), for re-assignment in Python.
SELECT id, ST_X(geom) AS x, ST_Y(geom) AS y, grid_code FROM {points}
