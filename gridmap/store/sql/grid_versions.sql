-- Every published version of one community's grids, newest first.
SELECT v.version, v.valid_from, v.valid_to, v.note, v.note_notes, v.author, v.approver,
       v.restored_from,
       (SELECT count(*) FROM grid_history h WHERE h.version_id = v.id) AS grids
FROM grid_version AS v
WHERE v.community_code = :community
ORDER BY v.version DESC
