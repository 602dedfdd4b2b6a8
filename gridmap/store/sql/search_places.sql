-- Named places a dispatcher may look for, each with a point and the township it lies in:
-- roads (the named streets of the walking network, one place per street and township, at
-- the point of the street nearest its middle; and the street part of household addresses
-- no named street of that township carries, at the middle of its households), townships
-- and communities, grids, facilities, and buildings with a name or an address (by its
-- address, else its name; in the grid that holds it). ``area`` is the division or grid code
-- the caller's scope is checked against (gridmap.places ranks and filters by it, so the
-- list is read once per change, not per search).
WITH street AS (
    SELECT e.name AS road, t.code AS township, e.geom
    FROM street_edge AS e
    JOIN LATERAL (SELECT d.code::text AS code FROM division AS d
                  WHERE d.level = 'township'
                    AND ST_Intersects(d.geom, ST_LineInterpolatePoint(e.geom, 0.5))
                  ORDER BY d.code LIMIT 1) AS t ON true
    WHERE e.name IS NOT NULL AND e.geom IS NOT NULL
), addressed AS (
    SELECT substring(address FROM '^[^0-9]+') AS road, geom,
           left(grid_code, 9) || '000' AS township
    FROM household
    WHERE grid_code IS NOT NULL
)
SELECT 'road' AS kind, road AS name, township AS id, NULL AS type, township AS area,
       ST_X(pt) AS lon, ST_Y(pt) AS lat, township AS township_code
FROM (SELECT road, township,
             ST_ClosestPoint(ST_Collect(geom), ST_Centroid(ST_Collect(geom))) AS pt
      FROM street
      GROUP BY road, township) AS s
UNION ALL
SELECT 'road', road, township, NULL, township, ST_X(pt), ST_Y(pt), township
FROM (SELECT road, township, ST_Centroid(ST_Collect(geom)) AS pt
      FROM addressed
      WHERE road IS NOT NULL
      GROUP BY road, township) AS h
WHERE NOT EXISTS (SELECT 1 FROM street AS s WHERE s.road = h.road AND s.township = h.township)
UNION ALL
SELECT d.level::text, d.name, d.code::text, NULL, d.code::text,
       ST_X(ST_PointOnSurface(d.geom)), ST_Y(ST_PointOnSurface(d.geom)),
       left(d.code, 9) || '000'
FROM division AS d
WHERE d.level::text IN ('township', 'community')
UNION ALL
SELECT 'grid', g.name, g.code::text, g.kind, g.code::text,
       ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)),
       left(g.code, 9) || '000'
FROM grid AS g
UNION ALL
SELECT 'facility', f.name, f.id::text, f.type, f.grid_code::text, ST_X(f.geom), ST_Y(f.geom),
       left(f.grid_code, 9) || '000'
FROM facility AS f
WHERE f.name IS NOT NULL AND f.grid_code IS NOT NULL
UNION ALL
SELECT 'building', coalesce(b.address, b.name), b.id, NULL, g.code::text, ST_X(p.pt),
       ST_Y(p.pt), left(g.code, 9) || '000'
FROM building AS b
CROSS JOIN LATERAL (SELECT ST_PointOnSurface(b.geom) AS pt) AS p
JOIN LATERAL (SELECT code FROM grid WHERE kind = 'comprehensive' AND ST_Intersects(geom, p.pt)
              ORDER BY code LIMIT 1) AS g ON true
WHERE b.name IS NOT NULL OR b.address IS NOT NULL
