-- The grid days written since their last count (health_dirty) near a window's whole days
-- [:day_from, :day_to), as local days: the CTE "dirty" of days.sql and runs.sql.
SELECT DISTINCT x.grid_code, (x.from_at AT TIME ZONE :tz)::date AS d0,
           (x.to_at AT TIME ZONE :tz)::date AS d1
    FROM health_dirty x
    WHERE x.to_at >= CAST(:day_from AS timestamptz) - interval '1 day'
      AND x.from_at < CAST(:day_to AS timestamptz) + interval '1 day'
