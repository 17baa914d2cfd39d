"""The stored forecast (``case_forecast``): next week's expected cases per area × class of the
active forecast model, ranked for the patrol list, and the warnings of the week (全域预警).

``case_forecast.week`` is a ``date``: the date of the Monday that begins the forecast week in
the city's time zone (``gridcore.intelligence.forecast.city_weeks``). The week's instants are
that Monday 00:00 to the next one *in the city's zone* (``week::timestamp AT TIME ZONE :tz``
below), never the midnight of the database session's TimeZone, which a ``date`` compared with a
``timestamptz`` would silently use."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from gridcore.intelligence.forecast import warnings, week_bounds
from gridcore.security.access import Scope


def store_forecast(conn: Connection, model_id: int, rows: pd.DataFrame) -> int:
    """The rows of a trained forecast; their ``week`` is the city's Monday (a naive midnight
    from ``train_forecast``), stored as that date."""
    data = [{"m": model_id, "level": r.level, "area": str(r.area), "cat": str(r.category),
             "week": pd.Timestamp(r.week).date(), "e": float(r.expected), "p": float(r.p90)}
            for r in rows.itertuples()]
    if data:
        conn.execute(text("INSERT INTO case_forecast (model_id, level, area_code, category_key, "
                          "week, expected, p90) VALUES (:m, :level, :area, :cat, :week, :e, :p)"),
                     data)
    return len(data)


def _scope_sql(scope: Scope, params: dict[str, Any]) -> str:
    """An area (grid or community code) inside the caller's areas; city-wide sees all."""
    if scope.city_wide:
        return "TRUE"
    parts = []
    for i, prefix in enumerate(scope.area_prefixes):
        params[f"p{i}"] = prefix + "%"
        # a community code is a prefix of its grids' codes: a worker of one grid sees its
        # community's line too (the expectation of the place around them)
        parts.append(f"(f.area_code LIKE :p{i} OR :p{i} LIKE f.area_code || '%')")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


RANKED = """
SELECT f.level, f.area_code, f.category_key, f.week, f.expected, f.p90,
       coalesce(g.name, cm.name) AS area_name, cat.name_zh, cat.name_en{geometry}
FROM case_forecast f
LEFT JOIN unit_grid g ON f.level = 'grid' AND g.code = f.area_code AND g.gen_to IS NULL
LEFT JOIN admin_area cm ON f.level = 'community' AND cm.code = f.area_code
LEFT JOIN category cat ON cat.key = f.category_key
WHERE f.model_id = :m AND f.level = :level AND (:cat IS NULL OR f.category_key = :cat)
  AND {scope}
ORDER BY f.expected DESC, f.area_code, f.category_key
LIMIT :limit
"""


def ranked(conn: Connection, model_id: int, level: str, scope: Scope, *,
           category: str | None = None, limit: int = 50,
           geometry: bool = False) -> list[dict[str, Any]]:
    """Highest expectation first: where to patrol, what to look at (未诉先办); with
    ``geometry`` each row carries its area's outline as GeoJSON text (the map layer)."""
    params: dict[str, Any] = {"m": model_id, "level": level, "cat": category, "limit": limit}
    geom = (",\n       ST_AsGeoJSON(coalesce(g.geom, cm.geom), 6) AS geometry"
            if geometry else "")
    sql = RANKED.format(scope=_scope_sql(scope, params), geometry=geom)
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]


OBSERVED = """
SELECT f.area_code, f.category_key, f.expected, count(c.id) AS observed
FROM case_forecast f
JOIN case_record c ON c.category_key = f.category_key
  AND (CASE WHEN f.level = 'grid' THEN c.grid_code ELSE c.community_code END) = f.area_code
  AND c.created_at >= (f.week::timestamp AT TIME ZONE :tz)
  AND c.created_at < ((f.week + 7)::timestamp AT TIME ZONE :tz)
WHERE f.model_id = :m AND f.level = :level AND {scope}
GROUP BY f.area_code, f.category_key, f.expected
"""


def week_warnings(conn: Connection, model_id: int, level: str, scope: Scope, *,
                  timezone: str, alpha: float = 1e-3,
                  min_count: int = 3) -> list[dict[str, Any]]:
    """Areas × classes whose cases of the forecast week so far are improbably many for their
    expectation (a Poisson upper tail below ``alpha``), most surprising first (全域预警). The
    week's cases are those from its Monday 00:00 to the next in ``timezone`` (the city's)."""
    params: dict[str, Any] = {"m": model_id, "level": level, "tz": timezone}
    rows = conn.execute(text(OBSERVED.format(scope=_scope_sql(scope, params))),
                        params).mappings().all()
    if not rows:
        return []
    keys = pd.DataFrame({"area": [r["area_code"] for r in rows],
                         "category": [r["category_key"] for r in rows]})
    found = warnings(keys, [r["observed"] for r in rows], [r["expected"] for r in rows],
                     alpha=alpha, min_count=min_count)
    return [{"area_code": w.area, "category_key": w.category, "observed": w.observed,
             "expected": round(w.expected, 3), "ratio": round(w.ratio, 1),
             "p_value": w.p_value} for w in found]


def forecast_week(conn: Connection, model_id: int) -> date | None:
    """The city's Monday of a stored forecast (one week per model), or None without rows."""
    found = conn.execute(text("SELECT min(week) FROM case_forecast WHERE model_id = :m"),
                         {"m": model_id}).scalar()
    return found if isinstance(found, date) else None


def week_answer(monday: date | None, timezone: str) -> dict[str, Any] | None:
    """What an answer says about the forecast week: the city's Monday (the rows' ``week``) and
    the aware instants it runs between (end exclusive), in the city's time zone."""
    if monday is None:
        return None
    start, end = week_bounds(monday, timezone)
    return {"monday": monday.isoformat(), "start": start.isoformat(),
            "end": end.isoformat(), "timezone": timezone}
