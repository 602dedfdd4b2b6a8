-- One round of the overdue job (the stages and their deadlines as STAGE_DEADLINES in
-- gridmap/domain/incidents.py): for every case past the deadline of the stage it is in, or
-- near it, append a timeline event once — 'warn_<deadline>' to the worker responsible,
-- 'escalate_<deadline>' (超期督办) to the supervisor of the case's township. Near means within
-- :warn_minutes and within the last quarter of the time the stage allows (from the moment the
-- case entered the stage): a 10-minute dispatch deadline warns 2.5 minutes before, not the
-- moment the case arrives. The events since the case last entered its stage are the job's
-- state: a case is warned and escalated once per deadline and stage, whichever process runs
-- the round, and a restart forgets nothing.
WITH due AS (
    SELECT i.id, i.status, i.grid_code, i.assignee, i.township_code, d.kind, d.at
    FROM incident i
    CROSS JOIN LATERAL (VALUES
        ('dispatch', CASE WHEN i.status IN ('collected', 'registered', 'returned')
                          THEN i.dispatch_due END),
        ('handling', CASE WHEN i.status IN ('dispatched', 'handling') THEN i.handle_due END),
        ('verification', CASE WHEN i.status = 'reported' THEN i.verify_due END)
    ) AS d (kind, at)
    WHERE d.at IS NOT NULL AND d.at < CAST(:now AS timestamptz) + make_interval(mins => :warn_minutes)
), steps AS (
    SELECT due.*, CASE WHEN due.at < CAST(:now AS timestamptz) THEN 'escalate_' ELSE 'warn_' END
                  || due.kind AS action
    FROM due
    WHERE due.at < CAST(:now AS timestamptz)
       OR due.at - CAST(:now AS timestamptz) < (
           SELECT CASE WHEN max(e.at) < due.at
                       THEN least(make_interval(mins => :warn_minutes), (due.at - max(e.at)) / 4)
                       ELSE make_interval(mins => :warn_minutes) END
           FROM incident_event e
           WHERE e.incident_id = due.id AND e.to_stage = due.status
             AND e.action NOT LIKE 'warn\_%' AND e.action NOT LIKE 'escalate\_%')
)
INSERT INTO incident_event (incident_id, at, actor, role, action, from_stage, to_stage,
                            grid_code, assignee, note, notes)
SELECT s.id, CAST(:now AS timestamptz), NULL, 'system', s.action, s.status, s.status,
       s.grid_code,
       CASE WHEN s.action LIKE 'escalate_%' THEN (
           SELECT w.id FROM grid_worker w
           WHERE w.role = 'supervisor' AND w.division_code = s.township_code
           ORDER BY w.id LIMIT 1)
       ELSE s.assignee END,
       CASE WHEN s.action LIKE 'escalate_%' THEN '超期督办: the ' || s.kind || ' deadline '
                 || to_char(s.at AT TIME ZONE :tz, 'YYYY-MM-DD HH24:MI') || ' has passed'
            ELSE 'the ' || s.kind || ' deadline ' || to_char(s.at AT TIME ZONE :tz,
                 'YYYY-MM-DD HH24:MI') || ' is near' END,
       -- the same as a note (gridmap/domain/notes.py), shown in the reader's language
       jsonb_build_array(jsonb_build_object(
           'key', CASE WHEN s.action LIKE 'escalate_%' THEN 'deadline_passed'
                       ELSE 'deadline_near' END,
           'values', jsonb_build_object(
               'deadline', s.kind,
               'at', to_char(s.at AT TIME ZONE :tz, 'YYYY-MM-DD HH24:MI'))))
FROM steps s
WHERE NOT EXISTS (
    SELECT 1 FROM incident_event e
    WHERE e.incident_id = s.id AND e.action = s.action AND e.from_stage = s.status
      AND e.id > (SELECT coalesce(max(x.id), 0) FROM incident_event x
                   WHERE x.incident_id = s.id AND x.to_stage = s.status
                     AND x.action NOT LIKE 'warn\_%' AND x.action NOT LIKE 'escalate\_%'))
RETURNING incident_id, action
