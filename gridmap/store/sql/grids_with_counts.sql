-- Current grids with the households and residents inside each, as a GeoJSON FeatureCollection.
-- :community is NULL for all communities. Counts use ST_Intersects until assignment is stored.
WITH counts AS (
    SELECT g.code, count(h.id) AS households, coalesce(sum(h.residents), 0) AS residents
    FROM grid g
    LEFT JOIN household h ON ST_Intersects(g.geom, h.geom)
    WHERE (CAST(:community AS text) IS NULL OR g.community_code = :community)
    GROUP BY g.code
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
