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
    SELECT c.id,
           {w_closed} - {w_reg} - coalesce(p.wmin, 0) AS work_min,
           date_part('epoch', c.closed_at - h.reg_at) / 60.0 - coalesce(p.cmin, 0) AS cal_min,
           l.minutes AS limit_min, coalesce(l.working, true) AS working
    FROM cohort c
    JOIN hist h ON h.case_id = c.id
    CROSS JOIN cal
    -- local day number and minute of day, computed once per instant (date_part: double
    -- precision; extract() returns numeric, several times slower here)
    CROSS JOIN LATERAL (SELECT h.reg_at AT TIME ZONE :tz AS reg,
                               c.closed_at AT TIME ZONE :tz AS closed) AS l0
    CROSS JOIN LATERAL (SELECT l0.reg::date - cal.first + 1 AS reg_day,
                               date_part('epoch', l0.reg::time) / 60.0 AS reg_tod,
                               l0.closed::date - cal.first + 1 AS closed_day,
                               date_part('epoch', l0.closed::time) / 60.0 AS closed_tod) AS t
    LEFT JOIN lim l ON l.key = c.category_key
    LEFT JOIN LATERAL (
        -- parked (挂账) intervals as the lifecycle records them on unpark, off the clock
        SELECT sum({w_pe} - {w_ps}) AS wmin,
               sum(date_part('epoch', u.pe - u.ps) / 60.0) AS cmin
        FROM jsonb_array_elements(c.parked_intervals) AS e,
             LATERAL (SELECT (e ->> 0)::timestamptz AS ps, (e ->> 1)::timestamptz AS pe) AS v,
             LATERAL (SELECT v.ps AT TIME ZONE :tz AS ps_l, v.pe AT TIME ZONE :tz AS pe_l) AS w,
             LATERAL (SELECT v.ps, v.pe, w.ps_l::date - cal.first + 1 AS ps_day,
                             date_part('epoch', w.ps_l::time) / 60.0 AS ps_tod,
                             w.pe_l::date - cal.first + 1 AS pe_day,
                             date_part('epoch', w.pe_l::time) / 60.0 AS pe_tod) AS u
    ) p ON c.parked_intervals <> '[]'::jsonb
    WHERE c.state = 'closed' AND c.closed_at < :end AND h.reg_at IS NOT NULL
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
