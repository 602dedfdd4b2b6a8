-- Households and residents per grid as the caller counted them (%(codes)s, %(households)s,
-- %(residents)s: a bulk import into an empty table counts what it writes), stored as
-- refresh_grid_load.sql stores a recount: only the grids whose load changed are written.
INSERT INTO grid_load (grid_code, households, residents)
SELECT code, households, residents
FROM unnest(%(codes)s::text[], %(households)s::int[], %(residents)s::int[])
     AS c(code, households, residents)
ON CONFLICT (grid_code) DO UPDATE
SET households = EXCLUDED.households, residents = EXCLUDED.residents
WHERE (grid_load.households, grid_load.residents)
      IS DISTINCT FROM (EXCLUDED.households, EXCLUDED.residents)
