-- Back to one household table keyed by id alone: every row of every county partition moves
-- (ids are unique across counties; were one not, the primary key would refuse it and the
-- downgrade would change nothing).
ALTER TABLE household RENAME TO household_by_county;

CREATE TABLE household (
    id                text NOT NULL CONSTRAINT household_id_check CHECK (id <> ''),
    address           text NOT NULL,
    residents         smallint NOT NULL CONSTRAINT household_residents_check CHECK (residents >= 0),
    elderly_alone     boolean NOT NULL DEFAULT false,
    disabled          boolean NOT NULL DEFAULT false,
    left_behind_child boolean NOT NULL DEFAULT false,
    low_income        boolean NOT NULL DEFAULT false,
    grid_code         char(15),
    geom              geometry(Point, 4326) NOT NULL,
    head_name         text CONSTRAINT household_head_name_check CHECK (head_name <> ''),
    phone             text CONSTRAINT household_phone_check CHECK (phone ~ '^[0-9+\- ]{5,20}$'),
    CONSTRAINT household_geom_lonlat CHECK (
        NOT ST_IsEmpty(geom) AND ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90)
);
INSERT INTO household (id, address, residents, elderly_alone, disabled, left_behind_child,
                       low_income, grid_code, geom, head_name, phone)
SELECT id, address, residents, elderly_alone, disabled, left_behind_child, low_income,
       grid_code, geom, head_name, phone
FROM household_by_county;
DROP TABLE household_by_county;  -- and its partitions
DROP FUNCTION gridmap_household_partitions(text[]);
DROP FUNCTION gridmap_county_of(geometry);

ALTER TABLE household ADD CONSTRAINT household_pkey PRIMARY KEY (id);
ALTER TABLE household ADD CONSTRAINT household_grid_code_fkey FOREIGN KEY (grid_code)
    REFERENCES grid (code) ON DELETE SET NULL;
CREATE INDEX household_geom_idx ON household USING gist (geom);
CREATE INDEX household_grid_idx ON household (grid_code);
CREATE INDEX household_address_trgm_idx ON household USING gin (address gin_trgm_ops);

CREATE TRIGGER household_notify_ins AFTER INSERT ON household REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER household_notify_upd AFTER UPDATE ON household REFERENCING OLD TABLE AS old_rows
    NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER household_notify_del AFTER DELETE ON household REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER household_notify_trunc AFTER TRUNCATE ON household
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_table();
