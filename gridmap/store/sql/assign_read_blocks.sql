-- The points of one table of {points} (a partition, or the table itself) stored in the
-- heap pages from {first} up to, not including, {last} (a TID range scan), as (id, x, y,
-- stored grid): one part of a full re-assignment's read, which several connections share.
SELECT id, ST_X(geom) AS x, ST_Y(geom) AS y, grid_code FROM ONLY {points}
WHERE ctid >= {first}::tid AND ctid < {last}::tid
