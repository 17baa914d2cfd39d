-- The inputs of facts.sql and store.sql (placeholder "inputs"): the working calendar's day
-- arrays (cal) and the classes' limits (lim), passed in as parameters by facts.py.
cal AS MATERIALIZED (
    SELECT CAST(:workday AS boolean[]) AS workday, CAST(:cum AS float8[]) AS cum,
           CAST(:first AS date) AS first
), lim AS (
    SELECT * FROM unnest(CAST(:cat_keys AS text[]), CAST(:cat_minutes AS float8[]),
                         CAST(:cat_working AS boolean[]), CAST(:h_minutes AS float8[]),
                         CAST(:h_working AS boolean[]), CAST(:k_minutes AS float8[]),
                         CAST(:k_working AS boolean[]))
        AS t(key, minutes, working, h_minutes, h_working, k_minutes, k_working)
