-- Recount households and residents per grid from the stored assignment; only the grids whose
-- load changed are written (so only their tiles go stale).
INSERT INTO grid_load (grid_code, households, residents)
SELECT grid_code, count(*), sum(residents) FROM household
WHERE grid_code IS NOT NULL GROUP BY grid_code
ON CONFLICT (grid_code) DO UPDATE
SET households = EXCLUDED.households, residents = EXCLUDED.residents
WHERE (grid_load.households, grid_load.residents)
      IS DISTINCT FROM (EXCLUDED.households, EXCLUDED.residents);

DELETE FROM grid_load AS l
WHERE NOT EXISTS (SELECT 1 FROM household h WHERE h.grid_code = l.grid_code);
