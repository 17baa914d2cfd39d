-- City health: working and calendar minutes from 立案 to 结案 per closed case of the cohort, parked
-- time off the clock, and the class's limit (the CTE "handled" of cases.sql and facts.sql).
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
