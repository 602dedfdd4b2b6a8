ALTER TABLE street_edge ADD COLUMN name text;
