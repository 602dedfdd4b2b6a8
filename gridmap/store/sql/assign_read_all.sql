-- Every point of {points} as (id, x, y, stored grid), for re-assignment in Python.
COPY (SELECT id, ST_X(geom), ST_Y(geom), grid_code FROM {points}) TO STDOUT (FORMAT csv)
