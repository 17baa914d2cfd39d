-- City health per case: what each case of a cohort adds to its grid's aggregates as it stood at
-- :end (infinity: as it stands now). Read by the day aggregates (layers/health/days.py): their
-- refresh counts the settled (closed) cases of the dirty grid days with :end = infinity, and a
-- window counts its live cases (open, closed after the window's last whole day, on its partial
-- days or in days still dirty) with its own :end. The same rules as cases.sql (the
-- recomputation from the cases the aggregates are checked against): the cohort's 立案 time and
-- 返工 from the history before :end, working minutes on the calendar arrays (w_* filled in
-- from layers/health/queries.cumulative), parked intervals off the clock; a repeat (重复问题)
-- has an earlier case of its class in its grid and H3 cell within :repeat_days, whatever the
-- window. The history and the repeats: one index probe per case (a window's live cases, a
-- refresh), or one pass per chunk of reports (a rebuild; layers/health/days.py).
WITH cal AS MATERIALIZED (
    SELECT CAST(:workday AS boolean[]) AS workday, CAST(:cum AS float8[]) AS cum,
           CAST(:first AS date) AS first
), lim AS (
    SELECT * FROM unnest(CAST(:cat_keys AS text[]), CAST(:cat_minutes AS float8[]),
                         CAST(:cat_working AS boolean[])) AS t(key, minutes, working)
), cohort AS MATERIALIZED (
    SELECT c.id, c.grid_code, c.category_key, c.state, c.created_at, c.closed_at,
           c.deadline_at, c.parked_since, c.parked_intervals, c.h3
    FROM ({source}) c
    WHERE c.grid_code IS NOT NULL AND c.state NOT IN ('voided', 'merged') {code_filter}
), hist AS MATERIALIZED (
    {hist}
), handled AS (
    {handled}
)
SELECT c.id, c.grid_code, c.category_key, c.created_at, c.closed_at,
       h.reg_at IS NOT NULL AS registered,
       x.id IS NOT NULL AS closed,
       coalesce((CASE WHEN x.working THEN x.work_min ELSE x.cal_min END) <= x.limit_min, false)
           AS on_time,
       coalesce(h.reworked AND h.reg_at IS NOT NULL, false) AS reworked,
       x.work_min,
       NOT (c.state = 'closed' AND c.closed_at < :end) AS open,
       coalesce(NOT (c.state = 'closed' AND c.closed_at < :end) AND c.deadline_at < :end
                AND c.parked_since IS NULL, false) AS overdue,
       {repeat} AS repeat
FROM cohort c
LEFT JOIN hist h ON h.case_id = c.id
LEFT JOIN handled x ON x.id = c.id
{repeat_join}
