-- City health: case aggregates per key (grid code, or its community / street / district prefix)
-- for one window. Aggregates by the STORED grid code of each case (no spatial join here).
-- Working time runs on a calendar passed in as arrays: one row per local day with "is a
-- working day" and the working minutes of all earlier days in the range (cum); the w_ placeholders are
-- cumulative working minutes at an instant, filled in by layers/health.py from the working
-- hours. Cohort = cases reported in the window (not voided or merged).
WITH cal AS (
    SELECT * FROM unnest(CAST(:days AS date[]), CAST(:workday AS boolean[]),
                         CAST(:cum AS float8[])) AS t(day, workday, cum)
), lim AS (
    SELECT * FROM unnest(CAST(:cat_keys AS text[]), CAST(:cat_minutes AS float8[]),
                         CAST(:cat_working AS boolean[])) AS t(key, minutes, working)
), cohort AS (
    SELECT c.id, left(c.grid_code, :n) AS key, c.category_key, c.state, c.created_at,
           c.closed_at, c.deadline_at, c.parked_since
    FROM case_record c
    WHERE c.created_at >= :start AND c.created_at < :end AND c.grid_code IS NOT NULL
      AND c.state NOT IN ('voided', 'merged') {code_filter}
), hist AS (
    SELECT h.case_id,
           min(h.at) FILTER (WHERE h.action = 'register') AS reg_at,
           coalesce(bool_or(h.action = 'rework'), false) AS reworked,
           array_agg(h.at ORDER BY h.id) FILTER (WHERE h.action = 'park') AS parks,
           array_agg(h.at ORDER BY h.id) FILTER (WHERE h.action = 'unpark') AS unparks
    FROM case_history h JOIN cohort c ON c.id = h.case_id
    WHERE h.at < :end AND h.action IN ('register', 'rework', 'park', 'unpark')
    GROUP BY h.case_id
), closed AS (
    SELECT c.id, h.reg_at, c.closed_at, h.parks, h.unparks, c.category_key
    FROM cohort c JOIN hist h ON h.case_id = c.id
    WHERE c.state = 'closed' AND c.closed_at < :end AND h.reg_at IS NOT NULL
), pause AS (
    SELECT p.id, sum({w_pe} - {w_ps}) AS wmin,
           sum(extract(epoch FROM p.pe - p.ps) / 60.0) AS cmin
    FROM (SELECT k.id, u.ps, coalesce(u.pe, k.closed_at) AS pe
          FROM closed k, unnest(k.parks, k.unparks) AS u(ps, pe)
          WHERE k.parks IS NOT NULL) p
    JOIN cal cs ON cs.day = (p.ps AT TIME ZONE :tz)::date
    JOIN cal ce ON ce.day = (p.pe AT TIME ZONE :tz)::date
    GROUP BY p.id
), handled AS (
    SELECT k.id,
           ({w_closed} - {w_reg} - coalesce(p.wmin, 0)) AS work_min,
           (extract(epoch FROM k.closed_at - k.reg_at) / 60.0 - coalesce(p.cmin, 0)) AS cal_min,
           l.minutes AS limit_min, coalesce(l.working, true) AS working
    FROM closed k
    JOIN cal cs ON cs.day = (k.reg_at AT TIME ZONE :tz)::date
    JOIN cal ce ON ce.day = (k.closed_at AT TIME ZONE :tz)::date
    LEFT JOIN pause p ON p.id = k.id
    LEFT JOIN lim l ON l.key = k.category_key
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
FROM cohort c
LEFT JOIN hist h ON h.case_id = c.id
LEFT JOIN handled x ON x.id = c.id
GROUP BY c.key
