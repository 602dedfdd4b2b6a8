-- Store the grid of every row of a point table; the join itself is assign_join.sql.
-- The join keeps the few grids on the outer side and probes the points' GiST index for each,
-- without parallel workers (see bench/bench_assign.py for both plans measured).
SET LOCAL max_parallel_workers_per_gather = 0;

CREATE TEMP TABLE gm_assigned ON COMMIT DROP AS {join};

CREATE INDEX ON gm_assigned (id);
ANALYZE gm_assigned;

UPDATE {points} AS p SET grid_code = a.code
FROM gm_assigned AS a
WHERE a.id = p.id AND p.grid_code IS DISTINCT FROM a.code;

UPDATE {points} AS p SET grid_code = NULL
WHERE p.grid_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM gm_assigned a WHERE a.id = p.id);
