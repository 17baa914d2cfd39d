-- Evaluation (考评): one row per case that can count in the window [:start, :end) — the facts
-- every kind's figures are counted from (layers/evaluation/facts.py groups them by department,
-- area and grid worker). Cohort: cases reported in the window, and those reported from :reach
-- (the window start less the data file's reach_days) that were still open when it began; not
-- merged. Their history: the window's cases in one range scan of case_history_case_idx (case
-- ids grow with time), the older open ones by one probe each.
-- Working time runs on the calendar arrays (cal); placeholders filled in by facts.py:
-- "instants" lateral joins giving each instant's local day and minute of day, "w_<name>"
-- the cumulative working minutes at that instant, "party_filter" a cohort filter (one
-- party's explanation), "parked_disp" / "parked_reg" parked working minutes inside a span,
-- "hist" the history of the cohort (sql/history.sql: one range scan for a whole city, one
-- index probe per case for one party).
WITH {inputs}), cohort AS MATERIALIZED (
    SELECT c.id, c.category_key, c.grid_code, c.community_code, c.street_code,
           c.district_code, c.department_code, c.state, c.source, c.created_at,
           CASE WHEN c.state = 'closed' THEN c.closed_at END AS closed_at,
           c.parked_intervals, c.parked_since, c.self_handled, c.callback
    FROM case_record c
    WHERE c.created_at >= :reach AND c.created_at < :end AND c.grid_code IS NOT NULL
      AND c.state <> 'merged' {party_filter}
      -- a case reported before the period counts only if it was still open when it began
      AND (c.created_at >= :start OR c.closed_at IS NULL OR c.closed_at >= :start)
), hist AS MATERIALIZED (
    {hist}
), base AS (
    SELECT c.*, h.rep_at, h.reporter, h.reporter_role, h.ver_at, h.verifier, h.void_at,
           h.reg_at, h.disp_at, h.fb_at, h.chk_at, h.checker, coalesce(h.reworks, 0) AS reworks,
           coalesce(h.refused, '{{}}') AS refused,
           {limits}
    FROM cohort c
    LEFT JOIN hist h ON h.case_id = c.id
    LEFT JOIN lim l ON l.key = c.category_key
), timed AS MATERIALIZED (
    SELECT b.*,
           {w_reg} AS w_reg, {w_closed} AS w_closed, {w_disp} AS w_disp, {w_fb} AS w_fb,
           {w_rep} AS w_rep, {w_ver} AS w_ver, {w_chk} AS w_chk,
           {w_start} AS w_start, {w_end} AS w_end,
           {parked_reg} AS parked_reg, {parked_disp} AS parked_disp
    FROM base b
    CROSS JOIN cal
    {instants}
)
SELECT t.id, t.category_key, t.grid_code, t.community_code, t.street_code, t.district_code,
       t.department_code, t.source, t.reporter, t.reporter_role, t.verifier, t.checker,
       t.refused, t.reworks,
       -- 区域 (areas) and 结案 of departments: the whole case from 立案 on
       coalesce(t.reg_at >= :start AND t.reg_at < :end, false) AS registered,
       coalesce(t.reg_at IS NOT NULL AND t.closed_at >= :start AND t.closed_at < :end, false)
           AS closed,
       (CASE WHEN t.working THEN t.w_closed - t.w_reg - t.parked_reg
             ELSE date_part('epoch', t.closed_at - t.reg_at) / 60.0 - t.parked_reg END)
           AS close_min,
       CASE WHEN t.working THEN t.w_end - t.w_reg - t.parked_reg
            ELSE date_part('epoch', CAST(:end AS timestamptz) - t.reg_at) / 60.0 - t.parked_reg
       END AS close_used_end,
       CASE WHEN t.working THEN t.w_start - t.w_reg
            ELSE date_part('epoch', CAST(:start AS timestamptz) - t.reg_at) / 60.0 END
           AS close_used_start,
       t.limit_min,
       coalesce(t.reg_at IS NOT NULL AND (t.closed_at IS NULL OR t.closed_at >= :end), false)
           AS open_at_end,
       -- 处置 (departments): from the last dispatch to the first feedback (反馈)
       coalesce(t.disp_at < :end AND t.department_code IS NOT NULL, false) AS dispatched,
       coalesce(t.disp_at >= :start AND t.disp_at < :end AND t.department_code IS NOT NULL,
                false) AS dispatched_in,
       coalesce(t.fb_at >= :start AND t.fb_at < :end AND t.department_code IS NOT NULL, false)
           AS handled,
       (CASE WHEN t.h_working THEN t.w_fb - t.w_disp - t.parked_disp
             ELSE date_part('epoch', t.fb_at - t.disp_at) / 60.0 - t.parked_disp END)
           AS handle_min,
       CASE WHEN t.h_working THEN t.w_end - t.w_disp - t.parked_disp
            ELSE date_part('epoch', CAST(:end AS timestamptz) - t.disp_at) / 60.0
                 - t.parked_disp END AS handle_used_end,
       CASE WHEN t.h_working THEN t.w_start - t.w_disp
            ELSE date_part('epoch', CAST(:start AS timestamptz) - t.disp_at) / 60.0 END
           AS handle_used_start,
       t.h_limit, (t.fb_at IS NULL OR t.fb_at >= :end) AS unhandled_at_end,
       -- grid workers: report, verify (核实), check (核查)
       coalesce(t.rep_at >= :start AND t.rep_at < :end AND t.reporter_role = 'grid_worker',
                false) AS worker_report,
       coalesce(t.void_at < :end, false) AS voided,
       -- a report its worker solved on the spot (自处置) is valid without a verification
       ((t.ver_at IS NOT NULL OR t.self_handled) AND t.void_at IS NULL) AS valid,
       coalesce(t.ver_at >= :start AND t.ver_at < :end, false) AS verified_in,
       (CASE WHEN :verify_working THEN t.w_ver - t.w_rep
             ELSE date_part('epoch', t.ver_at - t.rep_at) / 60.0 END) AS verify_min,
       coalesce(t.chk_at >= :start AND t.chk_at < :end, false) AS checked_in,
       (CASE WHEN t.k_working THEN t.w_chk - t.w_fb
             ELSE date_part('epoch', t.chk_at - t.fb_at) / 60.0 END) AS check_min,
       t.k_limit,
       -- levels and channels: 自处置 closed in the period; a caller's case (hotline,
       -- citizen) closed in it and its callback (回访)
       coalesce(t.self_handled AND t.closed_at >= :start AND t.closed_at < :end, false)
           AS self_handled_in,
       coalesce(t.source IN ('hotline', 'citizen') AND t.closed_at >= :start
                AND t.closed_at < :end, false) AS caller_case,
       coalesce(CAST(t.callback ->> 'reached' AS boolean), false) AS cb_reached,
       coalesce(CAST(t.callback ->> 'resolved' AS boolean), false) AS cb_resolved,
       coalesce(t.callback ->> 'satisfaction' IN ('satisfied', 'basically_satisfied'), false)
           AS cb_satisfied
FROM timed t
