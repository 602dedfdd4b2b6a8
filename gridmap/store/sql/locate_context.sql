-- Everything the locate index serves besides geometry: grids with their community and
-- township names, and the workers of each grid, community (grid heads) and township
-- (supervisors).
SELECT g.code, g.name, g.kind, g.community_code, c.name AS community_name,
       t.code AS township_code, t.name AS township_name,
       coalesce((SELECT json_agg(json_build_object('name', w.name, 'phone', w.phone,
                                                   'role', w.role) ORDER BY w.role, w.name)
                 FROM grid_worker w
                 WHERE w.grid_code = g.code OR w.division_code IN (c.code, t.code)),
                '[]'::json) AS workers
FROM grid g
JOIN division c ON c.code = g.community_code
JOIN division t ON t.code = c.parent_code
ORDER BY g.code
