-- City health of a long window from the running totals (layers/health/long.py): what the
-- stored totals cannot give. "stored": the day rows to add or take away — between each end of
-- the window and its nearest month boundary (:e*_sign), straddling its end (reported in it,
-- closed on or after :last_day: counted live instead), and those in grid days still dirty.
-- "live": per key, the window's live cases as sql/days.sql counts them, except that the cases
-- reported in its whole days and closed after them are found through the straddling day rows
-- (a GiST range, bounded by the cases open at its end) rather than every later closing, and
-- that the open cases of its clean grid days come from their facts (health_open, sql/open.sql)
-- rather than a history probe and a repeat probe each.
-- Each part answers one row of arrays (numpy reads columns, not rows). Placeholders filled
-- in by layers/health/long.py.
-- stored
WITH dirty AS MATERIALIZED (
    {dirty}
), d AS (
    SELECT d.*, CAST(:e1_sign AS int) AS sign FROM health_day d
    WHERE d.day >= CAST(:e1_lo AS date) AND d.day < CAST(:e1_hi AS date)
    UNION ALL
    SELECT d.*, CAST(:e0_sign AS int) FROM health_day d
    WHERE d.day >= CAST(:e0_lo AS date) AND d.day < CAST(:e0_hi AS date)
    UNION ALL
    SELECT d.*, -1 FROM health_day d
    WHERE daterange(d.day, d.closed_day, '[]')
          @> daterange(CAST(:last_day AS date) - 1, CAST(:last_day AS date), '[]')
      AND d.day >= CAST(:first_day AS date)
    UNION ALL
    -- from the few dirty grids (their day rows by the key), not the window's days filtered
    -- by them: the planner took the year's 2 M day rows for a hash join with one dirty mark
    SELECT d.*, -1 FROM (SELECT DISTINCT grid_code FROM dirty) g CROSS JOIN LATERAL (
        SELECT d.* FROM health_day d
        WHERE d.grid_code = g.grid_code
          AND d.day >= CAST(:first_day AS date) AND d.day < CAST(:last_day AS date)
          AND d.closed_day < CAST(:last_day AS date)
          AND EXISTS (SELECT 1 FROM dirty x
                      WHERE x.grid_code = d.grid_code AND d.day BETWEEN x.d0 AND x.d1)
        OFFSET 0) d
), s AS MATERIALIZED (
    SELECT d.grid_code, d.sign, d.category_key, d.cases, d.registered, d.closed,
           d.closed_on_time, d.reworked, d.repeat, d.work_min FROM d
)
SELECT a.*, b.*
FROM (SELECT array_agg(grid_code) AS grids, array_agg(sign) AS signs,
             array_agg(left(category_key, 3)) AS families, array_agg(cases) AS cases,
             array_agg(registered) AS registered, array_agg(closed) AS closed,
             array_agg(closed_on_time) AS closed_on_time, array_agg(reworked) AS reworked,
             array_agg(repeat) AS repeat
      FROM s) a,
     (SELECT array_agg(s.grid_code) AS work_grids, array_agg(s.sign) AS work_signs,
             array_agg(w) AS work
      FROM s, unnest(s.work_min) AS w WHERE w IS NOT NULL) b
-- live
WITH dirty AS MATERIALIZED (
    {dirty}
), straddle AS MATERIALIZED (
    {straddle}
), live AS MATERIALIZED (
    {facts}
)
SELECT array_agg(left(f.grid_code, :n)) AS keys, array_agg(left(f.category_key, 3)) AS families,
       array_agg(f.registered) AS registered, array_agg(f.closed) AS closed,
       array_agg(f.on_time) AS closed_on_time, array_agg(f.reworked) AS reworked,
       array_agg(f.repeat) AS repeat, array_agg(f.open) AS open,
       array_agg(f.overdue) AS overdue,
       array_agg(CASE WHEN f.closed THEN f.work_min END) AS work
FROM live f
