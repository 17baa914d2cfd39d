-- The clean day rows straddling a window's end (reported in its whole days, closed on or after
-- :last_day; a GiST range): their cases are live. The CTE "straddle" of days.sql and runs.sql.
SELECT DISTINCT d.grid_code, d.category_key, d.day
    FROM health_day d
    WHERE daterange(d.day, d.closed_day, '[]')
          @> daterange(CAST(:last_day AS date) - 1, CAST(:last_day AS date), '[]')
      AND d.day >= CAST(:first_day AS date)
      AND NOT EXISTS (SELECT 1 FROM dirty x
                      WHERE x.grid_code = d.grid_code AND d.day BETWEEN x.d0 AND x.d1)
