-- City health's facts of the open cases (health_open, layers/health/days.py): per case not
-- closed, voided or merged, what a window needs besides the case row — its first 立案
-- (register, or the "imported" row standing for it, as sql/history.sql), its first 返工 and
-- whether it is a repeat (重复问题: an earlier case of its class in its grid and H3 cell within
-- the repeat reach). Whatever the window's end, a case registered before it was registered at
-- the first of them, and reworked before it when its first rework was: so the facts counted
-- once, with no end, serve every window. Kept as the day aggregates are: a refresh recounts
-- the open cases of the dirty grid days, a rebuild all of them; a window reads the facts of
-- its clean grid days and counts the dirty ones' cases live. Placeholders filled in by
-- layers/health/days.py.
-- count
INSERT INTO health_open (case_id, grid_code, category_key, created_at, deadline_at,
                         parked_since, reg_at, rework_at, repeat)
SELECT c.id, c.grid_code, c.category_key, c.created_at, c.deadline_at, c.parked_since,
       h.reg_at, h.rework_at, {repeat}
FROM ({source}) c
CROSS JOIN LATERAL (
    SELECT min(h.at) FILTER (WHERE h.action IN ('register', 'imported')) AS reg_at,
           min(h.at) FILTER (WHERE h.action = 'rework') AS rework_at
    FROM case_history h
    WHERE h.case_id = c.id AND h.action IN ('register', 'rework', 'imported')) h
WHERE c.grid_code IS NOT NULL AND c.state NOT IN ('closed', 'voided', 'merged')
ON CONFLICT (case_id) DO UPDATE SET grid_code = EXCLUDED.grid_code,
    category_key = EXCLUDED.category_key, created_at = EXCLUDED.created_at,
    deadline_at = EXCLUDED.deadline_at, parked_since = EXCLUDED.parked_since,
    reg_at = EXCLUDED.reg_at, rework_at = EXCLUDED.rework_at, repeat = EXCLUDED.repeat
-- window
SELECT o.case_id AS id, o.grid_code, o.category_key, o.created_at,
       CAST(NULL AS timestamptz) AS closed_at,
       coalesce(o.reg_at < :end, false) AS registered, false AS closed, false AS on_time,
       coalesce(o.rework_at < :end AND o.reg_at < :end, false) AS reworked,
       CAST(NULL AS float8) AS work_min, true AS open,
       coalesce(o.deadline_at < :end AND o.parked_since IS NULL, false) AS overdue,
       o.repeat
FROM health_open o
WHERE o.created_at >= :day_from AND o.created_at < :day_to {code_filter}
  AND NOT EXISTS (SELECT 1 FROM dirty x WHERE x.grid_code = o.grid_code
                  AND (o.created_at AT TIME ZONE :tz)::date BETWEEN x.d0 AND x.d1)
