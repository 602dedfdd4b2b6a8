DROP TABLE pending_index;
