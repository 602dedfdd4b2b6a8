DROP TABLE IF EXISTS incident, grid_worker, facility, household, grid_history, grid_version,
    grid, division CASCADE;
DROP FUNCTION IF EXISTS gridmap_check_division_level() CASCADE;
