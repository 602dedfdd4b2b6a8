-- Households whose address contains the query, allowing typos (pg_trgm word similarity,
-- served by household_address_trgm_idx), best first — ties broken by whole-string similarity,
-- so the address sharing more of the query wins — with their grid and location; only
-- households in :scope (grid code prefixes as LIKE patterns; NULL: all, those outside every
-- grid included).
SELECT h.id, h.address, h.head_name, h.phone, h.residents, h.grid_code,
       h.elderly_alone, h.disabled, h.left_behind_child, h.low_income, g.name AS grid_name,
       ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat,
       word_similarity(:q, h.address) AS score
FROM household AS h
LEFT JOIN grid AS g ON g.code = h.grid_code
WHERE :q <% h.address
  AND (CAST(:scope AS text[]) IS NULL OR h.grid_code::text LIKE ANY(CAST(:scope AS text[])))
ORDER BY score DESC, similarity(:q, h.address) DESC, h.address, h.id
LIMIT :limit
