-- How many rows each layer holds within :scope (code prefixes as LIKE patterns; NULL: all,
-- points outside every grid included).
WITH s AS (SELECT CAST(:scope AS text[]) AS p)
SELECT (SELECT count(*) FROM division d WHERE d.level = 'township'
          AND (s.p IS NULL OR d.code::text LIKE ANY(s.p))) AS townships,
       (SELECT count(*) FROM division d WHERE d.level = 'community'
          AND (s.p IS NULL OR d.code::text LIKE ANY(s.p))) AS communities,
       (SELECT count(*) FROM grid g WHERE s.p IS NULL OR g.code::text LIKE ANY(s.p)) AS grids,
       (SELECT count(*) FROM household h
          WHERE s.p IS NULL OR h.grid_code::text LIKE ANY(s.p)) AS households,
       (SELECT count(*) FROM facility f
          WHERE s.p IS NULL OR f.grid_code::text LIKE ANY(s.p)) AS facilities,
       (SELECT count(*) FROM incident i
          WHERE s.p IS NULL OR coalesce(i.grid_code, i.township_code)::text LIKE ANY(s.p))
         AS incidents,
       (SELECT count(*) FROM grid_worker w
          WHERE s.p IS NULL OR coalesce(w.grid_code, w.division_code)::text LIKE ANY(s.p))
         AS workers
FROM s
