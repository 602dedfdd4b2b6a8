-- A grid's community, township and the worker responsible (full-time first, then the head).
SELECT g.community_code, c.parent_code AS township_code, c.urban_rural,
       (SELECT w.id FROM grid_worker w WHERE w.grid_code = g.code
          AND w.role IN ('full_time', 'grid_head')
        ORDER BY w.role <> 'full_time', w.id LIMIT 1) AS assignee
FROM grid g JOIN division c ON c.code = g.community_code
WHERE g.code = :code
