-- Write the new grids of the points whose grid changed (gm_assigned: id, code; a NULL code
-- for a point now outside every grid). Only these rows are rewritten.
UPDATE {points} AS p SET grid_code = a.code
FROM gm_assigned AS a
WHERE a.id = p.id
