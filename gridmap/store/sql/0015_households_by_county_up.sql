-- Households partitioned by county (PostgreSQL declarative partitioning, LIST on county_code:
-- the first 6 digits of the 12-digit division codes). A household's county is the county
-- whose closed polygon contains its point, the lowest code on a shared edge (the rule of
-- grids, gridmap.store.partitions); '000000' when no county in the store contains it (or
-- none is imported yet). An import computes the county and creates the partitions it needs
-- in its own transaction (gridmap_household_partitions). The primary key is (id,
-- county_code): a partitioned table's unique keys must hold the partition key; id leads,
-- so a look-up by id alone still probes each partition's key index, and the import keeps
-- ids unique across counties (a household that moves county is moved, not duplicated).

-- the county of a point, by the rule ('000000': in no county)
CREATE FUNCTION gridmap_county_of(p geometry) RETURNS char(6) LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT left(d.code, 6) FROM division AS d
                     WHERE d.level = 'county' AND ST_Intersects(d.geom, p)
                     ORDER BY d.code LIMIT 1), '000000')
$$;

ALTER TABLE household RENAME TO household_unpartitioned;

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
    county_code       char(6) NOT NULL DEFAULT '000000'
                      CONSTRAINT household_county_code_check CHECK (county_code ~ '^[0-9]{6}$'),
    CONSTRAINT household_geom_lonlat CHECK (
        NOT ST_IsEmpty(geom) AND ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90)
) PARTITION BY LIST (county_code);

-- The partitions of *counties* that do not exist yet, created as household_<county> and
-- attached (ATTACH takes a SHARE UPDATE EXCLUSIVE lock on household: reads and writes of
-- the other counties go on; two imports creating the same county wait for each other).
-- Inside the caller's transaction: a failed import takes its new partitions with it.
-- Returns how many it created.
CREATE FUNCTION gridmap_household_partitions(counties text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    c text;
    made integer := 0;
BEGIN
    FOREACH c IN ARRAY counties LOOP
        IF c IS NULL OR c !~ '^[0-9]{6}$' THEN
            RAISE EXCEPTION 'county code % is not 6 digits', coalesce(c, 'NULL')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        CONTINUE WHEN to_regclass(format('%I', 'household_' || c)) IS NOT NULL;
        LOCK TABLE household IN SHARE UPDATE EXCLUSIVE MODE;
        CONTINUE WHEN to_regclass(format('%I', 'household_' || c)) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I (LIKE household INCLUDING DEFAULTS INCLUDING '
                       'CONSTRAINTS)', 'household_' || c);
        EXECUTE format('ALTER TABLE household ATTACH PARTITION %I FOR VALUES IN (%L)',
                       'household_' || c, c);
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- every row moves, with its county
CREATE TEMP TABLE gm_household_county ON COMMIT DROP AS
SELECT id, gridmap_county_of(geom) AS county_code FROM household_unpartitioned;
SELECT gridmap_household_partitions(
    ARRAY['000000'] || coalesce((SELECT array_agg(DISTINCT county_code::text)
                                 FROM gm_household_county), '{}'));
INSERT INTO household (id, address, residents, elderly_alone, disabled, left_behind_child,
                       low_income, grid_code, geom, head_name, phone, county_code)
SELECT h.id, h.address, h.residents, h.elderly_alone, h.disabled, h.left_behind_child,
       h.low_income, h.grid_code, h.geom, h.head_name, h.phone, c.county_code
FROM household_unpartitioned AS h JOIN gm_household_county AS c USING (id);
DROP TABLE gm_household_county;
DROP TABLE household_unpartitioned;

-- keys and indexes after the rows (each is a partitioned index: one per partition)
ALTER TABLE household ADD CONSTRAINT household_pkey PRIMARY KEY (id, county_code);
ALTER TABLE household ADD CONSTRAINT household_grid_code_fkey FOREIGN KEY (grid_code)
    REFERENCES grid (code) ON DELETE SET NULL;
CREATE INDEX household_geom_idx ON household USING gist (geom);
CREATE INDEX household_grid_idx ON household (grid_code);
CREATE INDEX household_address_trgm_idx ON household USING gin (address gin_trgm_ops);

-- the change notices of 0003, on the partitioned table: a statement's transition tables hold
-- the rows of every partition it touched
CREATE TRIGGER household_notify_ins AFTER INSERT ON household REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER household_notify_upd AFTER UPDATE ON household REFERENCING OLD TABLE AS old_rows
    NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER household_notify_del AFTER DELETE ON household REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER household_notify_trunc AFTER TRUNCATE ON household
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_table();
