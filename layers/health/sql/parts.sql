-- City health: city parts (部件) per key by state (the inventory now, not windowed); "classes"
-- adds per-class totals and damaged-or-missing counts the model asks for.
SELECT left(grid_code, :n) AS key,
       count(*) AS parts,
       count(*) FILTER (WHERE state = 'intact') AS parts_intact,
       count(*) FILTER (WHERE state = 'damaged') AS parts_damaged,
       count(*) FILTER (WHERE state = 'missing') AS parts_missing,
       count(*) FILTER (WHERE state = 'occupied') AS parts_occupied
       {classes}
FROM city_part c
WHERE grid_code IS NOT NULL {code_filter}
GROUP BY 1
