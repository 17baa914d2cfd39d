-- The history rows city health needs (立案 time, 返工), per cohort case. An imported case
-- (layers/exchange/imports/cases.py) has no register row: its "imported" row, dated when the
-- legacy system opened it, stands for its registration. Two shapes, picked by layers/health.py:
-- "range" for a whole level (case ids grow with time, so the window's cases are one range of
-- case_history_case_idx), "probe" for one grid (one index probe per case).
-- range
SELECT h.case_id,
       min(h.at) FILTER (WHERE h.action IN ('register', 'imported')) AS reg_at,
       coalesce(bool_or(h.action = 'rework'), false) AS reworked
FROM case_history h
WHERE h.case_id BETWEEN (SELECT min(id) FROM cohort) AND (SELECT max(id) FROM cohort)
  AND h.at < :end AND h.action IN ('register', 'rework', 'imported')
GROUP BY h.case_id
-- probe
SELECT c.id AS case_id, x.*
FROM cohort c CROSS JOIN LATERAL (
    SELECT min(h.at) FILTER (WHERE h.action IN ('register', 'imported')) AS reg_at,
           coalesce(bool_or(h.action = 'rework'), false) AS reworked
    FROM case_history h
    WHERE h.case_id = c.id AND h.at < :end
      AND h.action IN ('register', 'rework', 'imported')) x
