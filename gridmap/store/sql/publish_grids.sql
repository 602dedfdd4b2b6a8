-- Publish gm_next (grids_next.sql) as a new version of each community in gm_changed
-- (grids_changed.sql), after the partition was checked. The current version is closed, never
-- overwritten. The old version ends at the very moment the new one starts (one clock reading),
-- so that no instant falls between two versions.

CREATE TEMP TABLE gm_moment ON COMMIT DROP AS SELECT clock_timestamp() AS at;

UPDATE grid_version AS v SET valid_to = (SELECT at FROM gm_moment)
FROM gm_changed AS c
WHERE v.community_code = c.community_code AND v.valid_to IS NULL;

CREATE TEMP TABLE gm_new_version (id bigint, community_code char(12), version integer)
    ON COMMIT DROP;

WITH ins AS (
    INSERT INTO grid_version (community_code, version, valid_from, note)
    SELECT c.community_code,
           coalesce((SELECT max(v.version) FROM grid_version v
                     WHERE v.community_code = c.community_code), 0) + 1,
           (SELECT at FROM gm_moment), 'import'
    FROM gm_changed AS c
    RETURNING id, community_code, version)
INSERT INTO gm_new_version SELECT id, community_code, version FROM ins;

DELETE FROM grid AS g
USING gm_changed AS c
WHERE g.community_code = c.community_code
  AND NOT EXISTS (SELECT 1 FROM gm_next s WHERE s.code = g.code);

INSERT INTO grid (code, name, kind, community_code, parent_grid_code, version, geom)
SELECT s.code, s.name, s.kind, s.community_code, s.parent_grid_code, nv.version, s.geom
FROM gm_next AS s JOIN gm_new_version AS nv USING (community_code)
ON CONFLICT (code) DO UPDATE
SET name = EXCLUDED.name, kind = EXCLUDED.kind, parent_grid_code = EXCLUDED.parent_grid_code,
    version = EXCLUDED.version, geom = EXCLUDED.geom;

INSERT INTO grid_history (version_id, code, name, kind, parent_grid_code, geom)
SELECT nv.id, s.code, s.name, s.kind, s.parent_grid_code, s.geom
FROM gm_next AS s JOIN gm_new_version AS nv USING (community_code);
