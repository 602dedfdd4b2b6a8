-- The households (or incidents: {points}) of a community whose grid differs between versions
-- :a and :b, by gridmap's rule (exclusive grid first, then the lowest code; NULL: none).
WITH a AS (
    SELECT h.code, h.kind, h.geom FROM grid_history h JOIN grid_version v ON v.id = h.version_id
    WHERE v.community_code = :community AND v.version = :a
      AND h.kind IN ('exclusive', 'comprehensive')
), b AS (
    SELECT h.code, h.kind, h.geom FROM grid_history h JOIN grid_version v ON v.id = h.version_id
    WHERE v.community_code = :community AND v.version = :b
      AND h.kind IN ('exclusive', 'comprehensive')
), p AS (
    SELECT p.id, p.geom FROM {points} p JOIN division d ON d.code = :community
    WHERE ST_Intersects(d.geom, p.geom)
)
SELECT p.id,
       (SELECT a.code FROM a WHERE ST_Intersects(a.geom, p.geom)
        ORDER BY a.kind <> 'exclusive', a.code LIMIT 1) AS from_grid,
       (SELECT b.code FROM b WHERE ST_Intersects(b.geom, p.geom)
        ORDER BY b.kind <> 'exclusive', b.code LIMIT 1) AS to_grid
FROM p
