-- City health: cases of the window per key and major class (cases_E04, cases_P01 …).
SELECT left(grid_code, :n) AS key, left(category_key, 3) AS family, count(*) AS n
FROM case_record c
WHERE created_at >= :start AND created_at < :end AND grid_code IS NOT NULL
  AND state NOT IN ('voided', 'merged') {code_filter}
GROUP BY 1, 2
