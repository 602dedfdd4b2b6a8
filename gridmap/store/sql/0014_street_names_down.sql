ALTER TABLE street_edge DROP COLUMN name;
