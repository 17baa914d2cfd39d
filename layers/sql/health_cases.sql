-- City health: case aggregates per key (grid code, or its community / street / district prefix)
-- for one window, by the STORED grid code of each case (no spatial join here).
-- Working time runs on a calendar passed in as arrays indexed by local day (day 1 = :first):
-- "is a working day" and the working minutes of all earlier days (cum), so the working time
-- between two instants is two array look-ups, not a walk. Placeholders filled in by
-- layers/health.py: w_* = cumulative working minutes at an instant (from the working hours);
-- hist = the register / rework / park rows of the cohort's history (health_history.sql);
-- families = the per-class counts the model asks for.
-- Cohort = cases reported in the window (not voided or merged).
WITH cal AS MATERIALIZED (
    SELECT CAST(:workday AS boolean[]) AS workday, CAST(:cum AS float8[]) AS cum,
           CAST(:first AS date) AS first
), lim AS (
    SELECT * FROM unnest(CAST(:cat_keys AS text[]), CAST(:cat_minutes AS float8[]),
                         CAST(:cat_working AS boolean[])) AS t(key, minutes, working)
), cohort AS MATERIALIZED (
    SELECT c.id, left(c.grid_code, :n) AS key, c.category_key, c.state, c.created_at,
           c.closed_at, c.deadline_at, c.parked_since
    FROM case_record c
    WHERE c.created_at >= :start AND c.created_at < :end AND c.grid_code IS NOT NULL
      AND c.state NOT IN ('voided', 'merged') {code_filter}
), hist AS MATERIALIZED (
    {hist}
), handled AS (
    SELECT c.id,
           {w_closed} - {w_reg} - coalesce(p.wmin, 0) AS work_min,
           extract(epoch FROM c.closed_at - h.reg_at) / 60.0 - coalesce(p.cmin, 0) AS cal_min,
           l.minutes AS limit_min, coalesce(l.working, true) AS working
    FROM cohort c
    JOIN hist h ON h.case_id = c.id
    CROSS JOIN cal
    LEFT JOIN lim l ON l.key = c.category_key
    LEFT JOIN LATERAL (
        -- parked (挂账) intervals, excluded from the clock; an unparked end is the closure
        SELECT sum({w_pe} - {w_ps}) AS wmin,
               sum(extract(epoch FROM coalesce(u.pe, c.closed_at) - u.ps) / 60.0) AS cmin
        FROM unnest(h.parks, h.unparks) AS u(ps, pe)
    ) p ON h.parks IS NOT NULL
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
       count(*) FILTER (WHERE x.id IS NULL) AS open,
       count(*) FILTER (WHERE x.id IS NULL AND c.deadline_at < :end
                          AND c.parked_since IS NULL) AS overdue
       {families}
FROM cohort c
LEFT JOIN hist h ON h.case_id = c.id
LEFT JOIN handled x ON x.id = c.id
GROUP BY c.key
