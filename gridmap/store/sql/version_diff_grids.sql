-- The grids that differ between versions :a and :b of a community: added, retired, reshaped
-- or renamed (going from :a to :b).
WITH a AS (
    SELECT h.* FROM grid_history h JOIN grid_version v ON v.id = h.version_id
    WHERE v.community_code = :community AND v.version = :a
), b AS (
    SELECT h.* FROM grid_history h JOIN grid_version v ON v.id = h.version_id
    WHERE v.community_code = :community AND v.version = :b
)
SELECT code, change FROM (
    SELECT coalesce(a.code, b.code) AS code,
           CASE WHEN a.code IS NULL THEN 'added'
                WHEN b.code IS NULL THEN 'retired'
                WHEN NOT ST_Equals(a.geom, b.geom) THEN 'reshaped'
                WHEN a.name <> b.name OR a.kind <> b.kind
                     OR a.parent_grid_code IS DISTINCT FROM b.parent_grid_code THEN 'renamed'
           END AS change
    FROM a FULL JOIN b USING (code)
) AS d
WHERE change IS NOT NULL
ORDER BY code
