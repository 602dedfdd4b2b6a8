-- Building footprints staged in building_stage, upserted on their id: a new footprint is
-- added, a changed one (shape, name, address) replaced, an unchanged one left as it is (no
-- row touched, no change notice). Buildings the file leaves out stay: nothing is deleted.
WITH upserted AS (
    INSERT INTO building (id, name, address, source, geom)
    SELECT id, nullif(name, ''), nullif(address, ''), :source,
           ST_Multi(ST_GeomFromEWKB(decode(geom, 'hex')))
    FROM building_stage
    ON CONFLICT (id) DO UPDATE
        SET name = excluded.name, address = excluded.address, source = excluded.source,
            geom = excluded.geom
        WHERE (building.name, building.address, building.source)
                  IS DISTINCT FROM (excluded.name, excluded.address, excluded.source)
           OR NOT ST_Equals(building.geom, excluded.geom)
    RETURNING (xmax = 0) AS added
)
SELECT count(*) FILTER (WHERE added) AS added, count(*) FILTER (WHERE NOT added) AS changed
FROM upserted
