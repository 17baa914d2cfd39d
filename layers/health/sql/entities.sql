-- City health: 9+X governance records per key and area — counts only, never the records.
SELECT left(grid_code, :n) AS key, lower(area) AS area, count(*) AS n
FROM governance_entity c
WHERE grid_code IS NOT NULL {code_filter}
GROUP BY 1, 2
