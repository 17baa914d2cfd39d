-- City health of a short window from its day rows, exactly (layers/health/short.py): the
-- stored rows sql/days.sql reads — the window's whole local days, closed before its last whole
-- day, not in a grid day still dirty — as one row of arrays (numpy sums them and takes the
-- exact p90; days.sql's GROUP BY and percentile_cont do it in SQL). Placeholders filled in by layers/health/short.py.
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
SELECT a.*, b.*
FROM (SELECT array_agg(grid_code) AS grids,
             array_agg(left(category_key, 3)) AS families, array_agg(cases) AS cases,
             array_agg(registered) AS registered, array_agg(closed) AS closed,
             array_agg(closed_on_time) AS closed_on_time, array_agg(reworked) AS reworked,
             array_agg(repeat) AS repeat
      FROM s) a,
     (SELECT array_agg(s.grid_code) AS work_grids, array_agg(w) AS work
      FROM s, unnest(s.work_min) AS w WHERE w IS NOT NULL) b
