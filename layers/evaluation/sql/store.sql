-- Evaluation facts (case_eval_fact): per case, what its whole history says and its working-
-- time durations, on the calendar arrays (cal) and the classes' limits (lim) passed in by
-- layers/evaluation/store.py. Placeholders: "source" the cases to count (SQL over case_record
-- c), "hist" their history (one id-range scan for a rebuild chunk, one probe per case for a
-- refresh), "instants" / "w_<name>" / "parked_*" as in facts.sql. Not counted: merged cases
-- and cases outside every grid (no evaluation counts them).
WITH {inputs}), cohort AS MATERIALIZED (
    SELECT c.id, c.category_key, c.grid_code, c.community_code, c.street_code,
           c.district_code, c.department_code, c.source, c.created_at, c.closed_at,
           c.state = 'closed' AS is_closed, c.parked_intervals, c.parked_since,
           c.self_handled, c.callback
    FROM case_record c
    WHERE c.grid_code IS NOT NULL AND c.state <> 'merged' AND ({source})
), hist AS MATERIALIZED (
    {hist}
), base AS (
    SELECT c.*, CASE WHEN c.is_closed THEN c.closed_at END AS closed_end,
           h.rep_at, h.reporter, h.reporter_role, h.ver_at, h.verifier, h.void_at,
           h.reg_at, h.disp_at, h.fb_at, h.chk_at, h.checker, h.rework_at, h.send_back_at,
           h.send_back_by,
           {limits}
    FROM cohort c
    LEFT JOIN hist h ON h.case_id = c.id
    LEFT JOIN lim l ON l.key = c.category_key
), timed AS MATERIALIZED (
    SELECT b.*,
           {w_reg} AS w_reg, {w_closed} AS w_closed, {w_disp} AS w_disp, {w_fb} AS w_fb,
           {w_rep} AS w_rep, {w_ver} AS w_ver, {w_chk} AS w_chk,
           {parked_reg} AS parked_reg, {parked_disp} AS parked_disp
    FROM base b
    CROSS JOIN cal
    {instants}
)
SELECT t.id AS case_id, t.created_at, t.closed_at, t.is_closed, t.category_key, t.grid_code,
       t.community_code, t.street_code, t.district_code, t.department_code, t.source,
       coalesce(t.self_handled, false) AS self_handled,
       coalesce(CAST(t.callback ->> 'reached' AS boolean), false) AS cb_reached,
       coalesce(CAST(t.callback ->> 'resolved' AS boolean), false) AS cb_resolved,
       coalesce(t.callback ->> 'satisfaction' IN ('satisfied', 'basically_satisfied'), false)
           AS cb_satisfied,
       t.parked_intervals, t.parked_since,
       t.rep_at, t.reporter, t.reporter_role, t.ver_at, t.verifier, t.void_at, t.reg_at,
       t.disp_at, t.fb_at, t.chk_at, t.checker, t.rework_at, t.send_back_at, t.send_back_by,
       t.limit_min, t.working, t.h_limit, t.h_working, t.k_limit, t.k_working,
       (CASE WHEN t.working THEN t.w_closed - t.w_reg - t.parked_reg
             ELSE date_part('epoch', t.closed_end - t.reg_at) / 60.0 - t.parked_reg END)
           AS close_min,
       (CASE WHEN t.h_working THEN t.w_fb - t.w_disp - t.parked_disp
             ELSE date_part('epoch', t.fb_at - t.disp_at) / 60.0 - t.parked_disp END)
           AS handle_min,
       (CASE WHEN :verify_working THEN t.w_ver - t.w_rep
             ELSE date_part('epoch', t.ver_at - t.rep_at) / 60.0 END) AS verify_min,
       (CASE WHEN t.k_working THEN t.w_chk - t.w_fb
             ELSE date_part('epoch', t.chk_at - t.fb_at) / 60.0 END) AS check_min
FROM timed t
-- @aggregates
array_agg(h.at ORDER BY h.at, h.id) FILTER (WHERE h.action = 'rework') AS rework_at,
array_agg(h.at ORDER BY h.at, h.id) FILTER (WHERE h.action = 'send_back') AS send_back_at,
array_agg(h.details ->> 'refused_by' ORDER BY h.at, h.id) FILTER (WHERE h.action = 'send_back')
    AS send_back_by
-- @range
SELECT h.case_id, {aggregates}
FROM case_history h
WHERE h.case_id BETWEEN :lo AND :hi AND h.action IN ({actions})
GROUP BY h.case_id
-- @probe
SELECT c.id AS case_id, x.*
FROM cohort c CROSS JOIN LATERAL (
    SELECT {aggregates}
    FROM case_history h
    WHERE h.case_id = c.id AND h.action IN ({actions})) x
