-- Migration 0019: every point stored in no grid although one holds it gets its grid by the
-- rule (as assign_join.sql: an exclusive grid before a comprehensive one, then the lowest
-- code); then the per-grid counts and the incidents' divisions follow (as
-- refresh_grid_load.sql and incident_divisions.sql, copied: a migration keeps its own SQL).
-- Statistics first: with those of a table whose points were all assigned when last analysed,
-- the planner expects no point in no grid and tests every one against every grid (minutes
-- for 100k points, instead of seconds through the points' GiST index).
ANALYZE grid;
ANALYZE household;
ANALYZE facility;
ANALYZE incident;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['household', 'facility', 'incident'] LOOP
        EXECUTE format(
            'UPDATE %I AS p SET grid_code = a.code '
            'FROM (SELECT DISTINCT ON (p.id) p.id, g.code '
            '      FROM grid AS g JOIN %I AS p ON ST_Intersects(g.geom, p.geom) '
            '      WHERE p.grid_code IS NULL AND g.kind IN (''exclusive'', ''comprehensive'') '
            '      ORDER BY p.id, (g.kind <> ''exclusive''), g.code) AS a '
            'WHERE p.grid_code IS NULL AND p.id = a.id', t, t);
    END LOOP;
END $$;

INSERT INTO grid_load (grid_code, households, residents)
SELECT grid_code, count(*), sum(residents) FROM household
WHERE grid_code IS NOT NULL GROUP BY grid_code
ON CONFLICT (grid_code) DO UPDATE
SET households = EXCLUDED.households, residents = EXCLUDED.residents
WHERE (grid_load.households, grid_load.residents)
      IS DISTINCT FROM (EXCLUDED.households, EXCLUDED.residents);

UPDATE incident AS i
SET community_code = g.community_code, township_code = c.parent_code
FROM grid AS g JOIN division AS c ON c.code = g.community_code
WHERE g.code = i.grid_code
  AND (i.community_code IS DISTINCT FROM g.community_code
       OR i.township_code IS DISTINCT FROM c.parent_code);
