-- The "base" step's limits (facts.sql, store.sql: placeholder "limits"): the whole-case and
-- check limits of the case's class, and its handling limit — one extended (延期) replaces it.
l.minutes AS limit_min, coalesce(l.working, true) AS working,
           coalesce(CASE substring(h.ext_limit FROM '[a-z]+$')
                        WHEN 'wd' THEN CAST(substring(h.ext_limit FROM '^[0-9.]+') AS float8)
                                       * :day_minutes
                        WHEN 'wh' THEN CAST(substring(h.ext_limit FROM '^[0-9.]+') AS float8) * 60
                        WHEN 'h' THEN CAST(substring(h.ext_limit FROM '^[0-9.]+') AS float8) * 60
                        WHEN 'm' THEN CAST(substring(h.ext_limit FROM '^[0-9.]+') AS float8)
                    END, l.h_minutes) AS h_limit,
           CASE WHEN h.ext_limit IS NULL THEN coalesce(l.h_working, true)
                ELSE h.ext_limit ~ 'w[dh]$' END AS h_working,
           l.k_minutes AS k_limit, coalesce(l.k_working, true) AS k_working
