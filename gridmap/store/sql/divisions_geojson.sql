-- Divisions of one level as a GeoJSON FeatureCollection, those in :scope only (code
-- prefixes as LIKE patterns; NULL: all).
SELECT json_build_object(
    'type', 'FeatureCollection',
    'features', coalesce(json_agg(json_build_object(
        'type', 'Feature',
        'id', d.code,
        'geometry', ST_AsGeoJSON(d.geom, 7)::json,
        'properties', json_build_object(
            'code', d.code, 'name', d.name, 'level', d.level,
            'urban_rural', d.urban_rural, 'parent_code', d.parent_code,
            'population', d.population)) ORDER BY d.code), '[]'::json))
FROM division d
WHERE d.level = :level AND (CAST(:scope AS text[]) IS NULL OR d.code::text LIKE ANY(CAST(:scope AS text[])));
