DROP TABLE IF EXISTS street_edge, street_node;
