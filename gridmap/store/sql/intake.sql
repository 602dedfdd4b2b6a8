-- Take a report in one statement: locate the point (the rule of route_point.sql: exclusive
-- grids before comprehensive ones, then the lowest code; outside every grid, the township
-- whose boundary holds it), and — when the place is in the caller's scope — insert the case
-- routed to its grid, community, township and worker, its first timeline entry ('collect',
-- noting the routing warnings, as English text and as notes each reader sees in their own
-- language), its photos and the audit entry. One round trip, atomic as every statement is.
-- Returns one row per place found (none: outside the district), with the new case's
-- columns when it was inserted (id NULL: not in the caller's scope).
WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom),
grids AS (
    SELECT g.code AS grid_code, g.community_code, c.parent_code AS township_code,
           c.urban_rural, g.kind <> 'exclusive' AS later
    FROM grid g JOIN division c ON c.code = g.community_code, p
    WHERE g.kind IN ('exclusive', 'comprehensive') AND ST_Intersects(g.geom, p.geom)
),
top AS (
    SELECT * FROM grids ORDER BY later, grid_code LIMIT 1
),
place AS (
    SELECT rtrim(top.grid_code) AS grid_code, rtrim(top.community_code) AS community_code,
           rtrim(top.township_code) AS township_code, top.urban_rural,
           (SELECT w.id FROM grid_worker w WHERE w.grid_code = top.grid_code
              AND w.role IN ('full_time', 'grid_head')
            ORDER BY w.role <> 'full_time', w.id LIMIT 1) AS assignee,
           ARRAY(SELECT rtrim(g.grid_code) FROM grids g WHERE g.grid_code <> top.grid_code
                 ORDER BY g.later, g.grid_code) AS candidates
    FROM top
    UNION ALL
    (SELECT NULL, NULL, rtrim(t.code), t.urban_rural, NULL, CAST('{}' AS text[])
     FROM division t, p
     WHERE t.level = 'township' AND ST_Intersects(t.geom, p.geom)
       AND NOT EXISTS (SELECT 1 FROM grids)
     ORDER BY t.code LIMIT 1)
),
route AS (
    SELECT place.*,
           (CAST(:scope AS text[]) IS NULL
            OR coalesce(grid_code, township_code) LIKE ANY(CAST(:scope AS text[]))) AS visible,
           array_remove(ARRAY[
               CASE WHEN grid_code IS NULL THEN format(:outside_note, township_code) END,
               CASE WHEN cardinality(candidates) > 0
                    THEN format(:edge_note, array_to_string(candidates, ', ')) END],
               NULL) AS warnings
    FROM place
    LIMIT 1
),
number AS (
    SELECT :id_prefix || lpad(CAST(nextval('incident_number_seq') AS text), 6, '0') AS id
    FROM route WHERE visible
),
new AS (
    INSERT INTO incident (id, category, description, reported_at, status, grid_code,
                          community_code, township_code, assignee, reporter, urgent, version,
                          updated_at, dispatch_due, geom)
    SELECT number.id, :category, :description, :at, 'collected', r.grid_code,
           r.community_code, r.township_code, r.assignee, :reporter, :urgent, 1, :at,
           :dispatch_due, p.geom
    FROM number, route r, p
    RETURNING id, category, description, reported_at, status, grid_code AS new_grid_code,
              version, updated_at, dispatch_due, handle_due, verify_due, closed_at,
              reporter, urgent, ST_X(geom) AS lon, ST_Y(geom) AS lat
),
event AS (
    INSERT INTO incident_event (incident_id, actor, role, action, from_stage, to_stage,
                                grid_code, assignee, note, notes)
    SELECT new.id, :actor, :role, 'collect', NULL, 'collected', r.grid_code, r.assignee,
           nullif(array_to_string(r.warnings, '; '), ''),
           -- the same warnings as keys and values (gridmap/domain/notes.py), for the reader
           (SELECT jsonb_agg(n) FROM (VALUES
               (CASE WHEN r.grid_code IS NULL THEN jsonb_build_object(
                    'key', 'outside_grid', 'values', jsonb_build_object('township',
                                                                        r.township_code)) END),
               (CASE WHEN cardinality(r.candidates) > 0 THEN jsonb_build_object(
                    'key', 'on_edge', 'values', jsonb_build_object('grids', r.candidates)) END)
            ) AS w (n) WHERE n IS NOT NULL)
    FROM new, route r
    RETURNING id, incident_id
),
photos AS (
    INSERT INTO incident_photo (id, incident_id, event_id, media_type, bytes, width, height,
                                sha256, taken_by)
    SELECT ph.id, event.incident_id, event.id, ph.media_type, ph.bytes, ph.width, ph.height,
           ph.sha256, :actor
    FROM event,
         unnest(CAST(:photo_ids AS text[]), CAST(:photo_types AS text[]),
                CAST(:photo_bytes AS integer[]), CAST(:photo_widths AS integer[]),
                CAST(:photo_heights AS integer[]), CAST(:photo_sha256 AS text[]))
             AS ph (id, media_type, bytes, width, height, sha256)
    RETURNING id
),
audit AS (
    INSERT INTO audit_log (user_name, role, action, target, divisions, row_ids, row_count,
                           client, detail)
    SELECT :actor, :role, 'write', :target, ARRAY[coalesce(r.grid_code, r.township_code)],
           ARRAY[new.id], 1, :client, :category
    FROM new, route r
)
SELECT r.grid_code, r.community_code, r.township_code, r.urban_rural, r.assignee,
       r.candidates, r.visible, r.warnings, new.*,
       (SELECT count(*) FROM photos) AS photos
FROM route r LEFT JOIN new ON true
