"""City health (城市体检) aggregation: per grid — or per community / street / district — and
window, every named aggregate the indicators read, computed set-based in PostGIS and keyed by
the grid code stored on each case and part (no spatial join at query time; a key of a higher
level is the code prefix: 12 digits community, 9 street, 6 district).

Working time (handling time, on-time closure) is counted in SQL against the city's working
calendar (:class:`gridcore.calendar.WorkingCalendar`), passed in as one row per local day, so
holidays, make-up days and working hours are the same as the case clocks use.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import time, timedelta
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text

from gridcore.calendar import WorkingCalendar
from gridcore.errors import NotFound, ValidationError
from gridcore.health import HealthModel, ScoreTable, Window, score_grids
from gridcore.health.model import AGGREGATES
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
def _sql(name: str) -> str:
    return (resources.files("layers") / "sql" / f"health_{name}.sql").read_text("utf-8")


def _minutes(t: time) -> float:
    return t.hour * 60 + t.minute + t.second / 60


def _cumulative(cal: WorkingCalendar, alias: str, instant: str) -> str:
    """SQL: working minutes from the range start up to ``instant`` (a column), using the day
    row ``alias``. The hours are numbers from a validated calendar, so formatting is safe."""
    tod = f"(extract(epoch FROM ({instant} AT TIME ZONE :tz)::time) / 60.0)"
    intra = " + ".join(f"least(greatest({tod} - {_minutes(a)}, 0), {_minutes(b) - _minutes(a)})"
                       for a, b in cal.hours)
    return f"({alias}.cum + CASE WHEN {alias}.workday THEN {intra} ELSE 0 END)"


def calendar_params(cal: WorkingCalendar, window: Window) -> dict[str, Any]:
    first = window.start.astimezone(cal.tz).date() - timedelta(days=1)
    last = window.end.astimezone(cal.tz).date() + timedelta(days=1)
    days, workday, cum, total = [], [], [], 0.0
    day = first
    while day <= last:
        working = cal.is_workday(day)
        days.append(day)
        workday.append(working)
        cum.append(total)
        total += cal.day_minutes if working else 0.0
        day += timedelta(days=1)
    return {"days": days, "workday": workday, "cum": cum, "tz": cal.timezone}


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


def _filters(n: int, code: str | None) -> dict[str, str]:
    if code is None:
        return {"code_filter": "", "code_filter_grid": ""}
    case = "AND c.grid_code = :code" if n == 15 else "AND left(c.grid_code, :n) = :code"
    return {"code_filter": case, "code_filter_grid": "AND left(c.code, :n) = :code"}


@dataclass
class Aggregates:
    level: str
    window: Window
    keys: list[str]
    columns: dict[str, np.ndarray]

    def row(self, key: str) -> dict[str, float | None]:
        i = self.keys.index(key)
        return {k: (None if np.isnan(v[i]) else float(v[i])) for k, v in self.columns.items()}


def aggregate(conn: Connection, window: Window, level: str, cal: WorkingCalendar,
              repeat_days: int = 30, code: str | None = None) -> Aggregates:
    """All aggregates for every key of ``level`` (or the one ``code``) in ``window``."""
    n = check_level(level)
    filters = _filters(n, code)
    params: dict[str, Any] = {"n": n, "start": window.start, "end": window.end, "code": code,
                              "repeat_days": repeat_days}
    keys: list[str] = []
    area: list[float] = []
    for key, km2 in conn.execute(text(_sql("areas").format(**filters)), params):
        keys.append(key)
        area.append(km2)
    pos = {k: i for i, k in enumerate(keys)}
    cols: dict[str, np.ndarray] = {"area_km2": np.array(area, dtype=float)}

    def put(name: str, key: str, value: Any) -> None:
        i = pos.get(key)
        if i is None:  # a case or part filed in a grid that is no longer current
            return
        col = cols.get(name)
        if col is None:
            start = np.nan if name.startswith("handling_") else 0.0
            col = cols[name] = np.full(len(keys), start)
        col[i] = np.nan if value is None else float(value)

    sql = _sql("cases").format(
        w_reg=_cumulative(cal, "cs", "k.reg_at"), w_closed=_cumulative(cal, "ce", "k.closed_at"),
        w_ps=_cumulative(cal, "cs", "p.ps"), w_pe=_cumulative(cal, "ce", "p.pe"), **filters)
    result = conn.execute(text(sql), {**params, **calendar_params(cal, window),
                                      **category_params(conn, cal)})
    for row in result.mappings():
        for name, value in row.items():
            if name != "key":
                put(name, row["key"], value)
    for key, family, count in conn.execute(text(_sql("classes").format(**filters)), params):
        put(f"cases_{family}", key, count)
    for key, count in conn.execute(text(_sql("repeats").format(**filters)), params):
        put("repeat", key, count)
    def add(name: str, key: str, count: int) -> None:
        if key in pos:
            cols.setdefault(name, np.zeros(len(keys)))[pos[key]] += count

    for key, cls, state, count in conn.execute(text(_sql("parts").format(**filters)), params):
        for name in ("parts", f"parts_{state}", f"parts_{cls}"):
            add(name, key, count)
        if state in ("damaged", "missing"):
            add(f"parts_bad_{cls}", key, count)
    for key, area_name, count in conn.execute(text(_sql("entities").format(**filters)), params):
        add("entities", key, count)
        add(f"entities_{area_name}", key, count)
    for name in AGGREGATES:  # a window without data still has every aggregate
        cols.setdefault(name, np.full(len(keys), np.nan if name in MEASURES else 0.0))
    return Aggregates(level, window, keys, cols)


@dataclass
class Health:
    """Scores of one level and window, with the aggregates behind them."""

    table: ScoreTable
    aggregates: Aggregates


_CACHE: OrderedDict[tuple, Health] = OrderedDict()
_CACHE_SIZE = 16


def _versions(conn: Connection) -> tuple:
    return tuple(conn.execute(text(
        "SELECT layer, version FROM layer_version WHERE layer IN "
        "('cases', 'parts', 'grids', 'entities', 'categories') ORDER BY layer")).all())


def score(engine: Engine, model: HealthModel, window: Window, level: str,
          cal: WorkingCalendar) -> Health:
    """Scores of every key of a level; cached until any layer behind them changes (the layer
    versions bump inside the writing transaction, so a cached table is never stale)."""
    check_level(level)
    with engine.connect() as conn:
        cache_key = (str(window), level, id(model), model.indices, cal, _versions(conn))
        health = _CACHE.get(cache_key)
        if health is None:
            agg = aggregate(conn, window, level, cal, model.repeat_days)
            health = Health(score_grids(model, agg.keys, agg.columns), agg)
            _CACHE[cache_key] = health
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(cache_key)
    return health


def scored(engine: Engine, model: HealthModel, window: Window, level: str, code: str,
           cal: WorkingCalendar) -> Health:
    """The level's scores, after checking that ``code`` is one of its current keys."""
    health = score(engine, model, window, level, cal)
    if code not in health.aggregates.keys:
        raise NotFound(f"no current {level} with code {code!r}", level=level, code=code)
    return health
