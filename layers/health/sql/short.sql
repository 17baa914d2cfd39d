-- City health of a short window from its day rows, exactly (layers/health/short.py): the
-- stored rows sql/days.sql reads — the window's whole local days, closed before its last whole
-- day, not in a grid day still dirty ("rows": the CTEs both shapes below begin with) — for numpy
-- to sum and take the exact p90 (days.sql's GROUP BY and percentile_cont do it in SQL). "copy":
-- fixed-width rows for a binary COPY, a row per day row (its counts and family, minutes NaN)
-- and one per handling time (counts 0, family 0); "arrays": the same as one row of arrays
-- (grid codes not all of 15 characters). Placeholders filled in by layers/health/short.py.
-- rows
WITH dirty AS MATERIALIZED (
    {dirty}
), s AS MATERIALIZED (
    SELECT d.grid_code, d.category_key, d.cases, d.registered, d.closed, d.closed_on_time,
           d.reworked, d.repeat, d.work_min
    FROM health_day d
    WHERE d.day >= CAST(:first_day AS date) AND d.day < CAST(:last_day AS date)
      AND d.closed_day < CAST(:last_day AS date)
      AND NOT EXISTS (SELECT 1 FROM dirty x
                      WHERE x.grid_code = d.grid_code AND d.day BETWEEN x.d0 AND x.d1)
)
-- copy
{rows}
SELECT grid_code, cases, registered, closed, closed_on_time, reworked, repeat,
       coalesce(array_position(CAST(:fams AS text[]), left(category_key, 3)), 0) AS fam,
       CAST('NaN' AS float8) AS w
FROM s
UNION ALL
SELECT s.grid_code, 0, 0, 0, 0, 0, 0, 0, w FROM s, unnest(s.work_min) AS w WHERE w IS NOT NULL
-- arrays
{rows}
SELECT a.*, b.*
FROM (SELECT array_agg(grid_code) AS grids,
             array_agg(left(category_key, 3)) AS families, array_agg(cases) AS cases,
             array_agg(registered) AS registered, array_agg(closed) AS closed,
             array_agg(closed_on_time) AS closed_on_time, array_agg(reworked) AS reworked,
             array_agg(repeat) AS repeat
      FROM s) a,
     (SELECT array_agg(s.grid_code) AS work_grids, array_agg(w) AS work
      FROM s, unnest(s.work_min) AS w WHERE w IS NOT NULL) b
