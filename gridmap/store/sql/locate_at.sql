-- The grids that held a WGS84 point at a moment (:at), from the versions valid then, the
-- winner by gridmap's rule first, with their community and township names.
SELECT h.code, h.name, h.kind, c.code AS community_code, c.name AS community_name,
       t.code AS township_code, t.name AS township_name, v.version
FROM grid_history AS h
JOIN grid_version AS v ON v.id = h.version_id
JOIN division AS c ON c.code = v.community_code
JOIN division AS t ON t.code = c.parent_code
WHERE v.valid_from <= :at AND (v.valid_to IS NULL OR v.valid_to > :at)
  AND h.kind IN ('exclusive', 'comprehensive')
  AND ST_Intersects(h.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
ORDER BY h.kind <> 'exclusive', h.code
