-- The walking network imported from OpenStreetMap, for coverage along streets.
CREATE TABLE street_node (
    id   bigint PRIMARY KEY,
    geom geometry(Point, 4326) NOT NULL
);
CREATE INDEX street_node_geom_idx ON street_node USING gist (geom);

CREATE TABLE street_edge (
    id       bigserial PRIMARY KEY,
    u        bigint NOT NULL REFERENCES street_node (id) ON DELETE CASCADE,
    v        bigint NOT NULL REFERENCES street_node (id) ON DELETE CASCADE,
    length_m double precision NOT NULL CHECK (length_m >= 0),
    geom     geometry(LineString, 4326)
);
CREATE INDEX street_edge_geom_idx ON street_edge USING gist (geom);
