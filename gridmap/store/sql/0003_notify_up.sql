-- Tell listeners (the API's in-process locate index and tile cache) what changed: one notice
-- per statement, with the table and the bounding box of every old and new geometry it
-- touched, so they refresh exactly what is stale.
CREATE FUNCTION gridmap_send_change(tbl text, box box2d) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF box IS NOT NULL THEN
        PERFORM pg_notify('gridmap_change', json_build_object(
            'table', tbl,
            'bbox', json_build_array(ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box))
        )::text);
    END IF;
END $$;

CREATE FUNCTION gridmap_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    box box2d;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT ST_Extent(geom) INTO box FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT ST_Extent(geom) INTO box FROM old_rows;
    ELSE
        SELECT ST_Extent(geom) INTO box
        FROM (SELECT geom FROM old_rows UNION ALL SELECT geom FROM new_rows) AS touched;
    END IF;
    PERFORM gridmap_send_change(TG_TABLE_NAME, box);
    RETURN NULL;
END $$;

CREATE FUNCTION gridmap_notify_table() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridmap_change', json_build_object('table', TG_TABLE_NAME)::text);
    RETURN NULL;
END $$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['grid', 'division', 'facility', 'incident', 'household'] LOOP
        EXECUTE format('CREATE TRIGGER %1$s_notify_ins AFTER INSERT ON %1$I REFERENCING NEW '
                       'TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION '
                       'gridmap_notify_change()', t);
        EXECUTE format('CREATE TRIGGER %1$s_notify_upd AFTER UPDATE ON %1$I REFERENCING OLD '
                       'TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE '
                       'FUNCTION gridmap_notify_change()', t);
        EXECUTE format('CREATE TRIGGER %1$s_notify_del AFTER DELETE ON %1$I REFERENCING OLD '
                       'TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION '
                       'gridmap_notify_change()', t);
        EXECUTE format('CREATE TRIGGER %1$s_notify_trunc AFTER TRUNCATE ON %1$I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_table()', t);
    END LOOP;
END $$;

-- workers carry no geometry: which table is enough
CREATE TRIGGER grid_worker_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON grid_worker
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_table();
