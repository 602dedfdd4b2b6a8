DROP TABLE IF EXISTS grid_load;
DROP FUNCTION IF EXISTS gridmap_notify_load();
