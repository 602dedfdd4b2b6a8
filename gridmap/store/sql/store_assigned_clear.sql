-- Rows of {points} no longer in any grid lose their grid.
UPDATE {points} AS p SET grid_code = NULL
WHERE p.grid_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM gm_assigned a WHERE a.id = p.id)
