-- Evaluation: per cohort case, what its history says (layers/evaluation/facts.py picks the
-- shape). Actors are the lowest name among the case's rows of that step (a step is taken once
-- in a case's life, but for a reopened case): plain min(), not an ordered aggregate — one
-- sort per case and step cost more than the rest of the query. An imported case
-- (layers/exchange/imports/cases.py) has no register row: its "imported" row, dated when the
-- legacy system opened it, stands for its registration (立案), as in city health.
-- @aggregates
min(h.at) FILTER (WHERE h.action = 'report') AS rep_at,
min(h.actor) FILTER (WHERE h.action = 'report') AS reporter,
min(h.role) FILTER (WHERE h.action = 'report') AS reporter_role,
min(h.at) FILTER (WHERE h.action = 'verify') AS ver_at,
min(h.actor) FILTER (WHERE h.action = 'verify') AS verifier,
min(h.at) FILTER (WHERE h.action = 'void') AS void_at,
min(h.at) FILTER (WHERE h.action IN ('register', 'imported')) AS reg_at,
max(h.at) FILTER (WHERE h.action = 'dispatch') AS disp_at,
min(h.at) FILTER (WHERE h.action = 'feed_back') AS fb_at,
min(h.at) FILTER (WHERE h.action = 'check') AS chk_at,
min(h.actor) FILTER (WHERE h.action = 'check') AS checker,
count(*) FILTER (WHERE h.action = 'rework' AND h.at >= :start) AS reworks,
max(h.details ->> 'new_limit') FILTER (WHERE h.action = 'extend') AS ext_limit,
array_remove(array_agg(h.details ->> 'refused_by')
    FILTER (WHERE h.action = 'send_back' AND h.at >= :start), NULL) AS refused
-- @range
SELECT h.case_id, {aggregates}
FROM case_history h
WHERE h.case_id BETWEEN (SELECT min(id) FROM cohort WHERE created_at >= :start)
                    AND (SELECT max(id) FROM cohort WHERE created_at >= :start)
  AND h.at < :end AND h.action IN ({actions})
GROUP BY h.case_id
UNION ALL
SELECT c.id AS case_id, x.*
FROM cohort c CROSS JOIN LATERAL (
    SELECT {aggregates}
    FROM case_history h
    WHERE h.case_id = c.id AND h.at < :end AND h.action IN ({actions})) x
WHERE c.created_at < :start
-- @probe
SELECT c.id AS case_id, x.*
FROM cohort c CROSS JOIN LATERAL (
    SELECT {aggregates}
    FROM case_history h
    WHERE h.case_id = c.id AND h.at < :end AND h.action IN ({actions})) x
