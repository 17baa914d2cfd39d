-- City health of a window from the day aggregates (health_day) plus the live cases: per key
-- (grid code or its community / street / district prefix) every aggregate cases.sql counts.
-- health_day holds the settled cases — closed — per grid × class × local day of report × local
-- day of closing, as they stand for good. A window [:start, :end) reads the rows of its whole
-- local days [:day_from, :day_to) closed before :day_to, except grid days still dirty (written
-- since the last refresh); the rest of its cohort is live, counted case by case (facts.sql)
-- with the window's own end: reported on its partial first and last days, still open, closed
-- on or after :day_to, or in a dirty grid day. Each branch of the live source is one index
-- range; the branches are disjoint. Placeholders filled in by layers/health/days.py.
WITH dirty AS MATERIALIZED (
    {dirty}
), straddle AS MATERIALIZED (
    {straddle}
), live AS MATERIALIZED (
    {facts}
), stored AS (
    SELECT left(d.grid_code, :n) AS key, d.category_key, d.cases, d.registered, d.closed,
           d.closed_on_time, d.reworked, d.repeat, d.work_min, 0 AS open, 0 AS overdue
    FROM health_day d
    WHERE d.day >= CAST(:first_day AS date) AND d.day < CAST(:last_day AS date)
      AND d.closed_day < CAST(:last_day AS date) {stored_filter}
      AND NOT EXISTS (SELECT 1 FROM dirty x
                      WHERE x.grid_code = d.grid_code AND d.day BETWEEN x.d0 AND x.d1)
), counted AS (
    SELECT * FROM stored
    UNION ALL
    SELECT left(f.grid_code, :n), f.category_key, 1, f.registered::int, f.closed::int,
           f.on_time::int, f.reworked::int, f.repeat::int,
           CASE WHEN f.closed THEN ARRAY[f.work_min] END, f.open::int, f.overdue::int
    FROM live f
), work AS (
    SELECT c.key, avg(w) / 60.0 AS handling_mean_h,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY w) / 60.0 AS handling_p90_h
    FROM counted c, unnest(c.work_min) AS w
    GROUP BY c.key
)
SELECT c.key,
       sum(c.cases) AS cases, sum(c.registered) AS registered, sum(c.closed) AS closed,
       sum(c.closed_on_time) AS closed_on_time, sum(c.reworked) AS reworked,
       min(w.handling_mean_h) AS handling_mean_h, min(w.handling_p90_h) AS handling_p90_h,
       sum(c.open) AS open, sum(c.overdue) AS overdue, sum(c.repeat) AS repeat
       {families}
FROM counted c
LEFT JOIN work w ON w.key = c.key
GROUP BY c.key
