-- Current grids with their households and residents (as assigned: `gridmap assign`), as a
-- GeoJSON FeatureCollection. :community is NULL for all communities.
WITH counts AS (
    SELECT g.code, coalesce(l.households, 0) AS households, coalesce(l.residents, 0) AS residents
    FROM grid g
    LEFT JOIN grid_load l ON l.grid_code = g.code
    WHERE (CAST(:community AS text) IS NULL OR g.community_code = :community)
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
            'households', c.households, 'residents', c.residents))
        ORDER BY g.kind, g.code), '[]'::json))
FROM grid g
JOIN counts c USING (code)
JOIN division d ON d.code = g.community_code;
