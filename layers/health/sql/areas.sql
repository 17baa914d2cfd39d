-- City health: the keys of one level with their area, from the current unit grids.
SELECT left(code, :n) AS key, sum(area_m2) / 1e6 AS area_km2
FROM unit_grid c
WHERE gen_to IS NULL {code_filter_grid}
GROUP BY 1
ORDER BY 1
