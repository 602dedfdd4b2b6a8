-- Everyone inside an area, per grid, within the caller's scope: households, residents and
-- the vulnerable among them (households with a care flag and their residents, in all and
-- per flag); each grid's name, kind, community and workers; with :list, the vulnerable
-- households themselves; with :shapes, each grid's outline as GeoJSON.
--
-- The area is a polygon (:wkb, WGS84) or a circle (:lon, :lat, :radius_m metres). The GiST
-- index on household.geom finds the candidates (geom && the area's box: the polygon's, or a
-- buffer a little wider than the circle); ST_Intersects (polygon: a point on its edge is
-- inside) or ST_DWithin on the spheroid (circle) decides. The scope keeps the households
-- whose grid code starts with one of the caller's prefixes; one outside every grid
-- (grid_code NULL) only for a caller who sees everything (:scope NULL).
WITH area AS MATERIALIZED (
    SELECT a.geom, a.center, a.radius_m,
           CASE WHEN a.center IS NULL THEN a.geom
                ELSE CAST(ST_Buffer(a.center, a.radius_m * 1.02) AS geometry) END AS box
    FROM (SELECT ST_GeomFromWKB(CAST(:wkb AS bytea), 4326) AS geom,
                 CAST(ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)),
                                 4326) AS geography) AS center,
                 CAST(:radius_m AS float8) AS radius_m) a
),
inside AS (
    SELECT h.id, h.grid_code, h.residents, h.elderly_alone, h.disabled,
           h.left_behind_child, h.low_income,
           (h.elderly_alone OR h.disabled OR h.left_behind_child OR h.low_income) AS vulnerable,
           h.address, h.head_name, h.phone, h.geom
    FROM area a JOIN household h ON h.geom && a.box
    WHERE CASE WHEN a.center IS NULL THEN ST_Intersects(a.geom, h.geom)
               ELSE ST_DWithin(CAST(h.geom AS geography), a.center, a.radius_m) END
      AND (CAST(:scope AS text[]) IS NULL
           OR CAST(h.grid_code AS text) LIKE ANY(CAST(:scope AS text[])))
),
per_grid AS (
    SELECT grid_code,
           count(*) AS households,
           sum(residents) AS residents,
           count(*) FILTER (WHERE vulnerable) AS vulnerable_households,
           coalesce(sum(residents) FILTER (WHERE vulnerable), 0) AS vulnerable_residents,
           count(*) FILTER (WHERE elderly_alone) AS elderly_alone_households,
           coalesce(sum(residents) FILTER (WHERE elderly_alone), 0) AS elderly_alone_residents,
           count(*) FILTER (WHERE disabled) AS disabled_households,
           coalesce(sum(residents) FILTER (WHERE disabled), 0) AS disabled_residents,
           count(*) FILTER (WHERE left_behind_child) AS left_behind_child_households,
           coalesce(sum(residents) FILTER (WHERE left_behind_child), 0)
               AS left_behind_child_residents,
           count(*) FILTER (WHERE low_income) AS low_income_households,
           coalesce(sum(residents) FILTER (WHERE low_income), 0) AS low_income_residents,
           CASE WHEN CAST(:list AS boolean) THEN
               json_agg(json_build_object(
                   'id', id, 'address', address, 'head_name', head_name, 'phone', phone,
                   'elderly_alone', elderly_alone, 'disabled', disabled,
                   'left_behind_child', left_behind_child, 'low_income', low_income,
                   'lon', ST_X(geom), 'lat', ST_Y(geom)) ORDER BY id)
                   FILTER (WHERE vulnerable)
           END AS vulnerable_list
    FROM inside
    GROUP BY grid_code
)
SELECT CAST(p.grid_code AS text) AS grid_code, g.name AS grid_name, g.kind,
       CAST(g.community_code AS text) AS community_code, c.name AS community_name,
       p.households, p.residents, p.vulnerable_households, p.vulnerable_residents,
       p.elderly_alone_households, p.elderly_alone_residents,
       p.disabled_households, p.disabled_residents,
       p.left_behind_child_households, p.left_behind_child_residents,
       p.low_income_households, p.low_income_residents, p.vulnerable_list,
       (SELECT json_agg(json_build_object('id', w.id, 'name', w.name, 'phone', w.phone,
                                          'role', w.role)
                        ORDER BY array_position(
                            ARRAY['grid_head', 'full_time', 'part_time', 'supervisor'], w.role),
                                 w.id)
        FROM grid_worker w WHERE w.grid_code = p.grid_code) AS workers,
       CASE WHEN CAST(:shapes AS boolean) THEN CAST(ST_AsGeoJSON(g.geom, 7) AS json) END
           AS shape
FROM per_grid p
LEFT JOIN grid g ON g.code = p.grid_code
LEFT JOIN division c ON c.code = g.community_code
ORDER BY p.grid_code NULLS LAST
