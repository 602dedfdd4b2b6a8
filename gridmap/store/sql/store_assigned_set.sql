-- Write the staged grids (gm_assigned) into {points}, touching only rows that change.
UPDATE {points} AS p SET grid_code = a.code
FROM gm_assigned AS a
WHERE a.id = p.id AND p.grid_code IS DISTINCT FROM a.code
