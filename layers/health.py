"""City health (城市体检) aggregation: per grid — or per community / street / district — and
window, every named aggregate the indicators read, computed set-based in PostGIS and keyed by
the grid code stored on each case and part (no spatial join at query time; a key of a higher
level is the code prefix: 12 digits community, 9 street, 6 district).

Working time (handling time, on-time closure) is counted in SQL against the city's working
calendar (:class:`gridcore.calendar.WorkingCalendar`), passed in as one row per local day, so
holidays, make-up days and working hours are the same as the case clocks use.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
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


def _cumulative(cal: WorkingCalendar, at: str) -> str:
    """SQL: working minutes from the calendar's first day up to the instant whose local day
    number and minute of day are the columns ``{at}_day`` and ``{at}_tod``, read from the day
    arrays of the ``cal`` row. The hours are numbers from a validated calendar, so formatting
    them into SQL is safe."""
    day, tod = f"{at}_day", f"{at}_tod"
    intra = " + ".join(f"least(greatest({tod} - {_minutes(a)}, 0), {_minutes(b) - _minutes(a)})"
                       for a, b in cal.hours)
    return f"(cal.cum[{day}] + CASE WHEN cal.workday[{day}] THEN {intra} ELSE 0 END)"


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


def _filters(n: int, code: str | None) -> dict[str, str]:
    if code is None:
        return {"code_filter": "", "code_filter_grid": ""}
    case = "AND c.grid_code = :code" if n == 15 else "AND left(c.grid_code, :n) = :code"
    grid = "AND c.code = :code" if n == 15 else "AND left(c.code, :n) = :code"
    return {"code_filter": case, "code_filter_grid": grid}


@dataclass
class Aggregates:
    level: str
    window: Window
    keys: list[str]
    columns: dict[str, np.ndarray]

    def row(self, key: str) -> dict[str, float | None]:
        i = self.keys.index(key)
        return {k: (None if np.isnan(v[i]) else float(v[i])) for k, v in self.columns.items()}


def _history_sql(shape: str) -> str:
    text_ = _sql("history")
    part = text_.split(f"-- {shape}\n", 1)[1]
    return part.split("\n-- ", 1)[0].strip()


def _families(conn: Connection, names: set[str] | None) -> tuple[list[str], list[str]]:
    """The per-class aggregates to compute: case families (cases_E04) and part classes
    (0101), from the names a model reads, or every class of the taxonomy when names is None."""
    if names is None:
        keys = [k for (k,) in conn.execute(text("SELECT key FROM category ORDER BY key"))]
        return (sorted({f"cases_{k[:3]}" for k in keys}),
                sorted({k[1:] for k in keys if k.startswith("P")}))
    cases = sorted(n for n in names if re.fullmatch(r"cases_[EP]\d{2}", n))
    parts = sorted({m.group(2) for n in names if (m := re.fullmatch(r"parts_(bad_)?(\d{4})", n))})
    return cases, parts


def _fill(cols: dict[str, np.ndarray], pos: dict[str, int], n: int, result: Any) -> None:
    """Copy a keyed result into the columns at the keys' positions (vectorised per column)."""
    rows = result.all()
    if not rows:
        return
    names = [c for c in result.keys() if c != "key"]  # noqa: SIM118 (a Result, not a dict)
    idx = np.fromiter((pos.get(r[0], -1) for r in rows), dtype=np.int64, count=len(rows))
    keep = idx >= 0  # a case or part filed in a grid that is no longer current is left out
    matrix = np.array([r[1:] for r in rows], dtype=float)  # None → NaN
    for j, name in enumerate(names):
        col = cols.setdefault(name, np.full(n, np.nan if name in MEASURES else 0.0))
        col[idx[keep]] = matrix[keep, j]


def aggregate(conn: Connection, window: Window, level: str, cal: WorkingCalendar,
              repeat_days: int = 30, code: str | None = None,
              names: set[str] | None = None) -> Aggregates:
    """All aggregates for every key of ``level`` (or the one ``code``) in ``window``; ``names``
    limits the per-class families to those a model reads (None: every class)."""
    n = check_level(level)
    filters = _filters(n, code)
    params: dict[str, Any] = {"n": n, "start": window.start, "end": window.end, "code": code,
                              "repeat_days": repeat_days}
    rows = conn.execute(text(_sql("areas").format(**filters)), params).all()
    keys = [r[0] for r in rows]
    pos = {k: i for i, k in enumerate(keys)}
    cols: dict[str, np.ndarray] = {"area_km2": np.array([r[1] for r in rows], dtype=float)}
    case_families, part_classes = _families(conn, names)
    families = "".join(f", count(*) FILTER (WHERE left(c.category_key, 3) = '{f[6:]}') "
                       f'AS "{f}"' for f in case_families)
    sql = _sql("cases").format(
        w_reg=_cumulative(cal, "t.reg"), w_closed=_cumulative(cal, "t.closed"),
        w_ps=_cumulative(cal, "u.ps"), w_pe=_cumulative(cal, "u.pe"),
        hist=_history_sql("probe" if code else "range"), families=families, **filters)
    pending = None
    if code is None:
        # A whole level: the parts / 9+X inventory is independent of the cases, so count it on
        # a second connection meanwhile (PostgreSQL runs each query on one core).
        pending = _POOL.submit(_inventory_on, conn.engine, level, part_classes, keys, params)
        # The planner misjudges the row counts of the CTEs and sorts ~10⁵ rows for merge
        # joins; hash joins are the right plan for a whole level (measured: bench_health.py).
        conn.execute(text("SET LOCAL enable_mergejoin = off"))
    _fill(cols, pos, len(keys), conn.execute(
        text(sql), {**params, **calendar_params(cal, window), **category_params(conn, cal)}))
    if code is None:
        conn.execute(text("SET LOCAL enable_mergejoin = on"))
    inventory = pending.result() if pending else _inventory(conn, level, code, part_classes,
                                                             keys, params)
    cols.update({k: v.copy() for k, v in inventory.items()})
    for name in [*AGGREGATES, *case_families]:  # a window without data has every aggregate
        cols.setdefault(name, np.full(len(keys), np.nan if name in MEASURES else 0.0))
    return Aggregates(level, window, keys, cols)


_INVENTORY: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="health-inventory")


def _inventory_on(engine: Engine, level: str, part_classes: list[str], keys: list[str],
                  params: dict[str, Any]) -> dict[str, np.ndarray]:
    with engine.connect() as conn:
        return _inventory(conn, level, None, part_classes, keys, params)


def _inventory(conn: Connection, level: str, code: str | None, part_classes: list[str],
               keys: list[str], params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Parts and 9+X counts per key. They are the inventory *now*, the same for every window,
    so a whole level's counts are kept until the parts, entities or grids layer changes."""
    n = check_level(level)
    cache_key = None
    if code is None:
        versions = tuple(conn.execute(text(
            "SELECT layer, version FROM layer_version WHERE layer IN "
            "('parts', 'entities', 'grids') ORDER BY layer")).all())
        cache_key = (str(conn.engine.url), level, tuple(part_classes), versions)
        if cache_key in _INVENTORY:
            _INVENTORY.move_to_end(cache_key)
            return _INVENTORY[cache_key]
    filters = _filters(n, code)
    pos = {k: i for i, k in enumerate(keys)}
    cols: dict[str, np.ndarray] = {}
    classes = "".join(f", count(*) FILTER (WHERE class_code = '{c}') AS \"parts_{c}\", "
                      f"count(*) FILTER (WHERE class_code = '{c}' AND state IN "
                      f"('damaged', 'missing')) AS \"parts_bad_{c}\"" for c in part_classes)
    _fill(cols, pos, len(keys), conn.execute(
        text(_sql("parts").format(classes=classes, **filters)), params))
    for key, area_name, count in conn.execute(text(_sql("entities").format(**filters)), params):
        if key in pos:
            cols.setdefault("entities", np.zeros(len(keys)))[pos[key]] += count
            cols.setdefault(f"entities_{area_name}", np.zeros(len(keys)))[pos[key]] = count
    if cache_key is not None:
        _INVENTORY[cache_key] = cols
        while len(_INVENTORY) > 8:
            _INVENTORY.popitem(last=False)
    return cols


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
        cache_key = (str(engine.url), str(window), level, id(model), model.indices, cal,
                     _versions(conn))
        health = _CACHE.get(cache_key)
        if health is None:
            agg = aggregate(conn, window, level, cal, model.repeat_days,
                            names=model.aggregate_names())
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
