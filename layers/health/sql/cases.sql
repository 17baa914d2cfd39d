-- City health: case aggregates per key (grid code, or its community / street / district prefix)
-- for one window, by the STORED grid code of each case (no spatial join here).
-- Working time runs on a calendar passed in as arrays indexed by local day (day 1 = :first):
-- "is a working day" and the working minutes of all earlier days (cum), so the working time
-- between two instants is two array look-ups, not a walk. Placeholders filled in by
-- layers/health.py: w_* = cumulative working minutes at an instant (from the working hours);
-- hist = the register / rework rows of the cohort's history (health_history.sql);
-- families = the per-class counts the model asks for; shard_filter = a grid-code range when a
-- level is counted in two parallel shards.
-- Cohort = cases reported in the window (not voided or merged). The same scan reaches back
-- :repeat_days for repeats (重复问题: an earlier case of the same class in the same grid and
-- H3 cell within :repeat_days), so they need no second query.
WITH cal AS MATERIALIZED (
    SELECT CAST(:workday AS boolean[]) AS workday, CAST(:cum AS float8[]) AS cum,
           CAST(:first AS date) AS first
), lim AS (
    SELECT * FROM unnest(CAST(:cat_keys AS text[]), CAST(:cat_minutes AS float8[]),
                         CAST(:cat_working AS boolean[])) AS t(key, minutes, working)
), recent AS MATERIALIZED (
    SELECT c.id, left(c.grid_code, :n) AS key, c.grid_code, c.category_key, c.state,
           c.created_at, c.closed_at, c.deadline_at, c.parked_since, c.parked_intervals, c.h3
    FROM case_record c
    WHERE c.created_at >= CAST(:start AS timestamptz) - make_interval(days => :repeat_days)
      AND c.created_at < :end AND c.grid_code IS NOT NULL
      AND c.state NOT IN ('voided', 'merged') {code_filter} {shard_filter}
), cohort AS MATERIALIZED (
    SELECT * FROM recent WHERE created_at >= :start
), rep AS (
    -- a hash semi-join on (grid, cell, class): no sort of the whole reach-back
    SELECT c.id FROM cohort c
    WHERE c.h3 IS NOT NULL AND EXISTS (
        SELECT 1 FROM recent r
        WHERE r.grid_code = c.grid_code AND r.h3 = c.h3 AND r.category_key = c.category_key
          AND r.created_at >= c.created_at - make_interval(days => :repeat_days)
          AND (r.created_at, r.id) < (c.created_at, c.id))
), hist AS MATERIALIZED (
    {hist}
), handled AS (
    {handled}
)
SELECT c.key,
       count(*) AS cases,
       count(h.reg_at) AS registered,
       count(x.id) AS closed,
       count(x.id) FILTER (WHERE (CASE WHEN x.working THEN x.work_min ELSE x.cal_min END)
                                 <= x.limit_min) AS closed_on_time,
       count(*) FILTER (WHERE h.reworked AND h.reg_at IS NOT NULL) AS reworked,
       avg(x.work_min) / 60.0 AS handling_mean_h,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY x.work_min) / 60.0 AS handling_p90_h,
       count(*) FILTER (WHERE NOT (c.state = 'closed' AND c.closed_at < :end)) AS open,
       count(*) FILTER (WHERE NOT (c.state = 'closed' AND c.closed_at < :end)
                          AND c.deadline_at < :end AND c.parked_since IS NULL) AS overdue,
       count(r.id) AS repeat
       {families}
FROM cohort c
LEFT JOIN hist h ON h.case_id = c.id
LEFT JOIN handled x ON x.id = c.id
LEFT JOIN rep r ON r.id = c.id
GROUP BY c.key
