DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['grid', 'division', 'facility', 'incident', 'household'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %1$s_notify_ins ON %1$I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %1$s_notify_upd ON %1$I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %1$s_notify_del ON %1$I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %1$s_notify_trunc ON %1$I', t);
    END LOOP;
END $$;
DROP TRIGGER IF EXISTS grid_worker_notify ON grid_worker;
DROP FUNCTION IF EXISTS gridmap_notify_change(), gridmap_notify_table(),
    gridmap_send_change(text, box2d);
