-- City health: repeat problems (重复问题) = cases of the window that follow an earlier case of
-- the same class in the same grid and H3 cell within :repeat_days days.
SELECT key, count(*) AS repeat
FROM (
    SELECT left(grid_code, :n) AS key, created_at,
           lag(created_at) OVER (PARTITION BY grid_code, h3, category_key
                                 ORDER BY created_at, id) AS before
    FROM case_record c
    WHERE created_at >= CAST(:start AS timestamptz) - make_interval(days => :repeat_days)
      AND created_at < :end AND grid_code IS NOT NULL AND h3 IS NOT NULL
      AND state NOT IN ('voided', 'merged') {code_filter}
) s
WHERE created_at >= :start AND before >= created_at - make_interval(days => :repeat_days)
GROUP BY key
