-- Current grids with their households and residents (as assigned: `gridmap assign`), as a
-- GeoJSON FeatureCollection. :community is NULL for all communities; :scope (code prefixes as
-- LIKE patterns, NULL: all) keeps the caller's; :counts false leaves the counts out.
WITH counts AS (
    SELECT g.code, coalesce(l.households, 0) AS households, coalesce(l.residents, 0) AS residents
    FROM grid g
    LEFT JOIN grid_load l ON l.grid_code = g.code
    WHERE (CAST(:community AS text) IS NULL OR g.community_code = :community)
      AND (CAST(:scope AS text[]) IS NULL OR g.code::text LIKE ANY(CAST(:scope AS text[])))
)
SELECT json_build_object(
    'type', 'FeatureCollection',
    'features', coalesce(json_agg(json_build_object(
        'type', 'Feature',
        'id', g.code,
        'geometry', ST_AsGeoJSON(g.geom, 7)::json,
        'properties', json_build_object(
            'code', g.code, 'name', g.name, 'kind', g.kind,
            'community_code', g.community_code, 'community', d.name,
            'urban_rural', d.urban_rural, 'version', g.version,
            'households', CASE WHEN :counts THEN c.households END,
            'residents', CASE WHEN :counts THEN c.residents END))
        ORDER BY g.kind, g.code), '[]'::json))
FROM grid g
JOIN counts c USING (code)
JOIN division d ON d.code = g.community_code;
