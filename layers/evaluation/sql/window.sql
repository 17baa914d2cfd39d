-- Evaluation (考评) from the stored facts (case_eval_fact, layers/evaluation/store.py): the
-- same rows and columns as facts.sql (the recount from the history), read one narrow row per
-- case. Cohort: cases reported in the window, and those reported from :reach that were still
-- open when it began. What depends on the window is computed here: the reworks and
-- send-backs inside it, the steps taken before its end, and — only for a case still open at
-- its end — the working time used by then (on the calendar arrays, placeholders "used_*"
-- filled in by facts.py). "party_filter" narrows the cohort (SQL over f. and c., the case).
WITH cal AS MATERIALIZED (
    SELECT CAST(:workday AS boolean[]) AS workday, CAST(:cum AS float8[]) AS cum,
           CAST(:first AS date) AS first
), b AS (
    SELECT f.* FROM case_eval_fact f
    WHERE f.created_at >= :start AND f.created_at < :end {party_filter}
    UNION ALL
    SELECT f.* FROM case_eval_fact f
    WHERE f.created_at >= :reach AND f.created_at < :start AND f.closed_at IS NULL
      {party_filter}
    UNION ALL
    SELECT f.* FROM case_eval_fact f
    WHERE f.closed_at >= :start AND f.created_at >= :reach AND f.created_at < :start
      {party_filter}
), t AS (
    SELECT b.*, CASE WHEN b.is_closed THEN b.closed_at END AS closed_end,
           coalesce(b.reg_at < :end, false) AS reg_before_end,
           coalesce(b.disp_at < :end, false) AS disp_before_end
    FROM b
)
SELECT t.case_id AS id, t.category_key, t.grid_code, t.community_code, t.street_code,
       t.district_code, t.department_code, t.source,
       CASE WHEN t.rep_at < :end THEN t.reporter END AS reporter,
       CASE WHEN t.rep_at < :end THEN t.reporter_role END AS reporter_role,
       CASE WHEN t.ver_at < :end THEN t.verifier END AS verifier,
       CASE WHEN t.chk_at < :end THEN t.checker END AS checker,
       CASE WHEN t.send_back_at IS NULL THEN CAST('{{}}' AS text[])
            ELSE array(SELECT s.by FROM unnest(t.send_back_at, t.send_back_by) AS s(at, by)
                       WHERE s.at >= :start AND s.at < :end AND s.by IS NOT NULL) END
           AS refused,
       CASE WHEN t.rework_at IS NULL THEN 0
            ELSE (SELECT count(*) FROM unnest(t.rework_at) AS r(at)
                  WHERE r.at >= :start AND r.at < :end) END AS reworks,
       -- 区域 (areas) and 结案 of departments: the whole case from 立案 on
       coalesce(t.reg_at >= :start AND t.reg_at < :end, false) AS registered,
       coalesce(t.reg_before_end AND t.closed_end >= :start AND t.closed_end < :end, false)
           AS closed,
       CASE WHEN t.reg_before_end AND t.closed_end < :end THEN t.close_min END AS close_min,
       {used_close_end} AS close_used_end,
       {used_close_start} AS close_used_start,
       t.limit_min,
       coalesce(t.reg_before_end AND (t.closed_end IS NULL OR t.closed_end >= :end), false)
           AS open_at_end,
       -- 处置 (departments): from the last dispatch to the first feedback (反馈)
       coalesce(t.disp_before_end AND t.department_code IS NOT NULL, false) AS dispatched,
       coalesce(t.disp_at >= :start AND t.disp_at < :end AND t.department_code IS NOT NULL,
                false) AS dispatched_in,
       coalesce(t.fb_at >= :start AND t.fb_at < :end AND t.department_code IS NOT NULL, false)
           AS handled,
       CASE WHEN t.disp_before_end AND t.fb_at < :end THEN t.handle_min END AS handle_min,
       {used_handle_end} AS handle_used_end,
       {used_handle_start} AS handle_used_start,
       t.h_limit, (t.fb_at IS NULL OR t.fb_at >= :end) AS unhandled_at_end,
       -- grid workers: report, verify (核实), check (核查)
       coalesce(t.rep_at >= :start AND t.rep_at < :end AND t.reporter_role = 'grid_worker',
                false) AS worker_report,
       coalesce(t.void_at < :end, false) AS voided,
       -- a report its worker solved on the spot (自处置) is valid without a verification
       ((coalesce(t.ver_at < :end, false) OR t.self_handled)
        AND NOT coalesce(t.void_at < :end, false)) AS valid,
       coalesce(t.ver_at >= :start AND t.ver_at < :end, false) AS verified_in,
       CASE WHEN t.ver_at < :end THEN t.verify_min END AS verify_min,
       coalesce(t.chk_at >= :start AND t.chk_at < :end, false) AS checked_in,
       CASE WHEN t.chk_at < :end THEN t.check_min END AS check_min, t.k_limit,
       -- levels and channels: 自处置 closed in the period; a caller's case (hotline,
       -- citizen) closed in it and its callback (回访)
       coalesce(t.self_handled AND t.closed_end >= :start AND t.closed_end < :end, false)
           AS self_handled_in,
       coalesce(t.source IN ('hotline', 'citizen') AND t.closed_end >= :start
                AND t.closed_end < :end, false) AS caller_case,
       t.cb_reached, t.cb_resolved, t.cb_satisfied
FROM t CROSS JOIN cal
