-- City health: city parts (部件) per key, class and state (the inventory now, not windowed).
SELECT left(grid_code, :n) AS key, class_code, state, count(*) AS n
FROM city_part c
WHERE grid_code IS NOT NULL {code_filter}
GROUP BY 1, 2, 3
