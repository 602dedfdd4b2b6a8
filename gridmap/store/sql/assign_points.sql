-- Stage the grid of every row of a point table in gm_assigned (the join is assign_join.sql);
-- store_assigned_*.sql then write it. The join keeps the few grids on the outer side and
-- probes the points' GiST index for each, without parallel workers (see bench/bench_assign.py
-- for both plans measured).
SET LOCAL max_parallel_workers_per_gather = 0;

CREATE TEMP TABLE gm_assigned ON COMMIT DROP AS {join};

CREATE INDEX ON gm_assigned (id);
ANALYZE gm_assigned;
