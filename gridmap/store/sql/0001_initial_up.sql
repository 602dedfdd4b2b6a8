-- gridmap initial schema. Geometries are stored in EPSG:4326; polygon layers keep a
-- generated Web-Mercator copy (geom_3857) so vector tiles need no per-request transform.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Administrative divisions: county/district -> township/sub-district -> village/community,
-- keyed by the 12-digit statistical division code.
CREATE TABLE division (
    code        char(12) PRIMARY KEY CHECK (code ~ '^[0-9]{12}$'),
    name        text NOT NULL CHECK (name <> ''),
    level       text NOT NULL CHECK (level IN ('county', 'township', 'community')),
    urban_rural text CHECK (urban_rural IN ('urban', 'rural')),
    parent_code char(12) REFERENCES division (code) ON UPDATE CASCADE,
    population  integer CHECK (population >= 0),
    geom        geometry(MultiPolygon, 4326) NOT NULL,
    geom_3857   geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    CONSTRAINT division_geom_valid CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
    CONSTRAINT division_code_matches_level CHECK (
        (level = 'county' AND right(code, 6) = '000000' AND parent_code IS NULL)
        OR (level = 'township' AND substr(code, 7, 3) <> '000' AND right(code, 3) = '000'
            AND parent_code = left(code, 6) || '000000')
        OR (level = 'community' AND right(code, 3) <> '000'
            AND parent_code = left(code, 9) || '000')
    )
);
CREATE INDEX division_geom_idx ON division USING gist (geom);
CREATE INDEX division_geom_3857_idx ON division USING gist (geom_3857);
CREATE INDEX division_parent_idx ON division (parent_code);
CREATE INDEX division_name_trgm_idx ON division USING gin (name gin_trgm_ops);

-- Current grids. A grid belongs to exactly one community: its code starts with the
-- community's 12 digits and community_code must name a division of level 'community'.
CREATE TABLE grid (
    code             char(15) PRIMARY KEY CHECK (code ~ '^[0-9]{15}$' AND right(code, 3) <> '000'),
    name             text NOT NULL CHECK (name <> ''),
    kind             text NOT NULL CHECK (kind IN ('comprehensive', 'exclusive', 'micro')),
    community_code   char(12) NOT NULL REFERENCES division (code) ON UPDATE CASCADE,
    parent_grid_code char(15) REFERENCES grid (code) ON DELETE SET NULL,
    version          integer NOT NULL DEFAULT 1,
    geom             geometry(MultiPolygon, 4326) NOT NULL,
    geom_3857        geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    CONSTRAINT grid_geom_valid CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
    CONSTRAINT grid_code_in_community CHECK (left(code, 12) = community_code),
    CONSTRAINT grid_parent_kind CHECK (kind <> 'comprehensive' OR parent_grid_code IS NULL)
);
CREATE INDEX grid_geom_idx ON grid USING gist (geom);
CREATE INDEX grid_geom_3857_idx ON grid USING gist (geom_3857);
CREATE INDEX grid_community_idx ON grid (community_code);

CREATE FUNCTION gridmap_check_division_level() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM division d
                   WHERE d.code = NEW.community_code AND d.level = 'community') THEN
        RAISE EXCEPTION 'grid % : % is not a village/community division', NEW.code, NEW.community_code
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER grid_community_level BEFORE INSERT OR UPDATE OF community_code ON grid
    FOR EACH ROW EXECUTE FUNCTION gridmap_check_division_level();

-- Every published set of a community's grids, with its validity interval. A redraw closes
-- the current version (valid_to) and opens a new one; nothing is overwritten.
CREATE TABLE grid_version (
    id             bigserial PRIMARY KEY,
    community_code char(12) NOT NULL REFERENCES division (code) ON UPDATE CASCADE,
    version        integer NOT NULL CHECK (version >= 1),
    valid_from     timestamptz NOT NULL DEFAULT now(),
    valid_to       timestamptz,
    note           text,
    UNIQUE (community_code, version),
    CONSTRAINT grid_version_interval CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CONSTRAINT grid_version_no_overlap EXCLUDE USING gist (
        community_code WITH =, tstzrange(valid_from, valid_to) WITH &&)
);
CREATE TABLE grid_history (
    version_id       bigint NOT NULL REFERENCES grid_version (id) ON DELETE CASCADE,
    code             char(15) NOT NULL,
    name             text NOT NULL,
    kind             text NOT NULL,
    parent_grid_code char(15),
    geom             geometry(MultiPolygon, 4326) NOT NULL,
    PRIMARY KEY (version_id, code)
);
CREATE INDEX grid_history_geom_idx ON grid_history USING gist (geom);
CREATE INDEX grid_history_code_idx ON grid_history (code);

CREATE TABLE grid_worker (
    id            text PRIMARY KEY CHECK (id <> ''),
    name          text NOT NULL CHECK (name <> ''),
    phone         text NOT NULL CHECK (phone ~ '^[0-9+\- ]{5,20}$'),
    role          text NOT NULL CHECK (role IN ('grid_head', 'full_time', 'part_time', 'supervisor')),
    grid_code     char(15) REFERENCES grid (code) ON DELETE SET NULL,
    division_code char(12) REFERENCES division (code) ON UPDATE CASCADE
);
CREATE INDEX grid_worker_grid_idx ON grid_worker (grid_code);

CREATE TABLE household (
    id                text PRIMARY KEY CHECK (id <> ''),
    address           text NOT NULL,
    residents         smallint NOT NULL CHECK (residents >= 0),
    elderly_alone     boolean NOT NULL DEFAULT false,
    disabled          boolean NOT NULL DEFAULT false,
    left_behind_child boolean NOT NULL DEFAULT false,
    low_income        boolean NOT NULL DEFAULT false,
    grid_code         char(15) REFERENCES grid (code) ON DELETE SET NULL,
    geom              geometry(Point, 4326) NOT NULL,
    CONSTRAINT household_geom_lonlat CHECK (
        NOT ST_IsEmpty(geom) AND ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90)
);
CREATE INDEX household_geom_idx ON household USING gist (geom);
CREATE INDEX household_grid_idx ON household (grid_code);

CREATE TABLE facility (
    id        text PRIMARY KEY CHECK (id <> ''),
    type      text NOT NULL CHECK (type ~ '^[a-z_]+$'),
    name      text NOT NULL,
    capacity  integer CHECK (capacity >= 0),
    grid_code char(15) REFERENCES grid (code) ON DELETE SET NULL,
    geom      geometry(Point, 4326) NOT NULL,
    CONSTRAINT facility_geom_lonlat CHECK (
        NOT ST_IsEmpty(geom) AND ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90)
);
CREATE INDEX facility_geom_idx ON facility USING gist (geom);
CREATE INDEX facility_type_idx ON facility (type);

CREATE TABLE incident (
    id          text PRIMARY KEY CHECK (id <> ''),
    category    text NOT NULL,
    description text NOT NULL DEFAULT '',
    reported_at timestamptz NOT NULL,
    status      text NOT NULL CHECK (status IN ('collected', 'registered', 'cancelled', 'dispatched',
                    'handling', 'reported', 'verified', 'closed', 'evaluated')),
    grid_code   char(15) REFERENCES grid (code) ON DELETE SET NULL,
    geom        geometry(Point, 4326) NOT NULL,
    CONSTRAINT incident_geom_lonlat CHECK (
        NOT ST_IsEmpty(geom) AND ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90)
);
CREATE INDEX incident_geom_idx ON incident USING gist (geom);
CREATE INDEX incident_status_idx ON incident (status);
