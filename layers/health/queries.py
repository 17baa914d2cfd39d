"""City health SQL helpers shared by the aggregation and the inventory: levels, the SQL files,
the working calendar as arrays, code filters, and copying keyed rows into numpy columns."""

from __future__ import annotations

from datetime import time, timedelta
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gridcore.calendar import WorkingCalendar
from gridcore.errors import ValidationError
from gridcore.health import Window
from gridcore.health.scoring import MEASURES
from gridcore.taxonomy import LimitUnit, Stage, TimeLimit

LEVELS = {"grid": 15, "community": 12, "street": 9, "district": 6}
_WORKING_UNITS = (LimitUnit.WORKING_HOURS, LimitUnit.WORKING_DAYS)


def check_level(level: str) -> int:
    if level not in LEVELS:
        raise ValidationError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}",
                              field="level", value=level, allowed=list(LEVELS))
    return LEVELS[level]


@cache
def sql_text(name: str) -> str:
    return (resources.files("layers.health") / "sql" / f"{name}.sql").read_text("utf-8")


def dirty_sql(name: str = "dirty") -> str:
    """A CTE body shared by days.sql and runs.sql (sql/dirty.sql, sql/straddle.sql), without
    its comment."""
    return "\n".join(line for line in sql_text(name).splitlines()
                     if not line.startswith("--"))


def _minutes(t: time) -> float:
    return t.hour * 60 + t.minute + t.second / 60


def cumulative(cal: WorkingCalendar, at: str) -> str:
    """SQL: working minutes from the calendar's first day up to the instant whose local day
    number and minute of day are the columns ``{at}_day`` and ``{at}_tod``, read from the day
    arrays of the ``cal`` row. The hours are numbers from a validated calendar, so formatting
    them into SQL is safe."""
    day, tod = f"{at}_day", f"{at}_tod"
    intra = " + ".join(f"least(greatest({tod} - {_minutes(a)}, 0), {_minutes(b) - _minutes(a)})"
                       for a, b in cal.hours)
    return f"(cal.cum[{day}] + CASE WHEN cal.workday[{day}] THEN {intra} ELSE 0 END)"


def handled_sql(cal: WorkingCalendar) -> str:
    """The CTE body "handled" (sql/handled.sql) with the calendar's working-minute
    expressions: shared by the recount (cases.sql) and the day aggregates (facts.sql)."""
    return sql_text("handled").format(
        w_reg=cumulative(cal, "t.reg"), w_closed=cumulative(cal, "t.closed"),
        w_ps=cumulative(cal, "u.ps"), w_pe=cumulative(cal, "u.pe"))


def calendar_params(cal: WorkingCalendar, window: Window) -> dict[str, Any]:
    first = window.start.astimezone(cal.tz).date() - timedelta(days=1)
    last = window.end.astimezone(cal.tz).date() + timedelta(days=1)
    workday, cum, total = [], [], 0.0
    day = first
    while day <= last:
        working = cal.is_workday(day)
        workday.append(working)
        cum.append(total)
        total += cal.day_minutes if working else 0.0
        day += timedelta(days=1)
    return {"first": first, "workday": workday, "cum": cum, "tz": cal.timezone}


def category_params(conn: Connection, cal: WorkingCalendar) -> dict[str, Any]:
    """Per class: the whole-case limit (立案→结案 = the sum of its stage limits, in minutes) and
    whether it is counted on the working calendar (when the handling limit is in working
    hours or days) or in calendar time (emergencies)."""
    keys, minutes, working = [], [], []
    for key, limits in conn.execute(text("SELECT key, limits FROM category")):
        parsed = {s: TimeLimit.parse(limits[s.value]) for s in Stage if s.value in limits}
        keys.append(key)
        minutes.append(sum(cal.limit_minutes(v) for v in parsed.values()))
        handle = parsed.get(Stage.HANDLE)
        working.append(handle is None or handle.unit in _WORKING_UNITS)
    return {"cat_keys": keys, "cat_minutes": minutes, "cat_working": working}


def filters_for(n: int, code: str | None) -> dict[str, str]:
    if code is None:
        return {"code_filter": "", "code_filter_grid": ""}
    case = "AND c.grid_code = :code" if n == 15 else "AND left(c.grid_code, :n) = :code"
    grid = "AND c.code = :code" if n == 15 else "AND left(c.code, :n) = :code"
    return {"code_filter": case, "code_filter_grid": grid}


def history_sql(shape: str) -> str:
    text_ = sql_text("history")
    part = text_.split(f"-- {shape}\n", 1)[1]
    return part.split("\n-- ", 1)[0].strip()


def fill(cols: dict[str, np.ndarray], pos: dict[str, int], n: int, result: Any) -> None:
    """Copy a keyed result into the columns at the keys' positions (vectorised per column)."""
    names = [c for c in result.keys() if c != "key"]  # noqa: SIM118 (a Result, not a dict)
    fill_rows(cols, pos, n, names, result.all())


def fill_rows(cols: dict[str, np.ndarray], pos: dict[str, int], n: int, names: list[str],
               rows: list[Any]) -> None:
    if not rows:
        return
    idx = np.fromiter((pos.get(r[0], -1) for r in rows), dtype=np.int64, count=len(rows))
    keep = idx >= 0  # a case or part filed in a grid that is no longer current is left out
    matrix = np.array([r[1:] for r in rows], dtype=float)  # None → NaN
    for j, name in enumerate(names):
        col = cols.setdefault(name, np.full(n, np.nan if name in MEASURES else 0.0))
        col[idx[keep]] = matrix[keep, j]
