DROP TRIGGER street_edge_notify_ins ON street_edge;
DROP TRIGGER street_edge_notify_upd ON street_edge;
DROP TRIGGER street_edge_notify_del ON street_edge;
DROP TRIGGER street_edge_notify_trunc ON street_edge;
DROP TABLE building;
