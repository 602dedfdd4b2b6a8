-- Recount households and residents of the grids in gm_touched (the grids points left or
-- joined) from the stored assignment: the incremental form of refresh_grid_load.sql.
INSERT INTO grid_load (grid_code, households, residents)
SELECT h.grid_code, count(*), sum(h.residents)
FROM household AS h JOIN gm_touched AS t ON h.grid_code = t.code
WHERE EXISTS (SELECT 1 FROM grid g WHERE g.code = t.code)
GROUP BY h.grid_code
ON CONFLICT (grid_code) DO UPDATE
SET households = EXCLUDED.households, residents = EXCLUDED.residents
WHERE (grid_load.households, grid_load.residents)
      IS DISTINCT FROM (EXCLUDED.households, EXCLUDED.residents);

DELETE FROM grid_load AS l
USING gm_touched AS t
WHERE l.grid_code = t.code
  AND NOT EXISTS (SELECT 1 FROM household h WHERE h.grid_code = l.grid_code);
