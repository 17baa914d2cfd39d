"""City health (城市体检) aggregation: per grid — or per community / street / district — and
window, every named aggregate the indicators read, computed set-based in PostGIS and keyed by
the grid code stored on each case and part (no spatial join at query time; a key of a higher
level is the code prefix: 12 digits community, 9 street, 6 district).

Working time (handling time, on-time closure) is counted in SQL against the city's working
calendar (:class:`gridcore.calendar.WorkingCalendar`), passed in as one row per local day, so
holidays, make-up days and working hours are the same as the case clocks use. Two threads:
the parts / 9+X inventory (``layers.health.inventory``) and, for a large level, a second shard
of the case query run on their own connections meanwhile.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from gridcore.calendar import WorkingCalendar
from gridcore.errors import NotFound
from gridcore.health import HealthModel, ScoreTable, Window, score_grids
from gridcore.health.model import AGGREGATES
from gridcore.health.scoring import MEASURES
from layers.health import days as day_aggregates
from layers.health import long as long_window
from layers.health import short as short_window
from layers.health.inventory import cached, inventory, inventory_on
from layers.health.keys import level_keys as keys_of_level
from layers.health.queries import (
    LEVELS,
    calendar_params,
    category_params,
    check_level,
    fill_rows,
    filters_for,
    handled_sql,
    history_sql,
    sql_text,
)

__all__ = ["LEVELS", "Aggregates", "Health", "aggregate", "check_level", "score",
           "score_with_previous", "scored"]

_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")
# the previous window's scores, counted beside the window's own (its tasks submit to _POOL,
# never the other way round, so neither pool waits on itself)
_PREVIOUS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-previous")


@dataclass
class Aggregates:
    level: str
    window: Window
    keys: list[str]
    columns: dict[str, np.ndarray]
    # how handling_p90_h was counted: exact, or from the running totals' histograms with its
    # error bound (layers/health/long.py)
    p90: dict[str, Any] = field(default_factory=lambda: dict(long_window.P90_EXACT))

    def row(self, key: str) -> dict[str, float | None]:
        i = self.keys.index(key)
        return {k: (None if np.isnan(v[i]) else float(v[i])) for k, v in self.columns.items()}


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


# Above this many keys, and when the inventory is cached (else its query takes the second
# core), a level's case query runs as two shards (by grid-code range) on two connections at
# once: PostgreSQL runs one query on one core, and the shards share nothing.
SHARD_MIN_KEYS = 4000


def _shards(keys: list[str], count: int) -> list[tuple[str | None, str | None]]:
    """Grid-code ranges [lo, hi) splitting the (sorted) keys; keys are code prefixes, so every
    grid code of a key falls in its key's range."""
    cuts = [keys[len(keys) * i // count] for i in range(1, count)]
    return list(zip([None, *cuts], [*cuts, None], strict=True))


def _case_rows(conn: Connection, sql: str, params: dict[str, Any],
               whole_level: bool) -> tuple[list[str], list[Any]]:
    if whole_level:
        # The planner misjudges the row counts of the CTEs and sorts ~10⁵ rows for merge
        # joins; hash joins are the right plan for a whole level (measured: bench_health.py).
        conn.execute(text("SET LOCAL enable_mergejoin = off"))
    result = conn.execute(text(sql), params)
    names, rows = [c for c in result.keys() if c != "key"], list(result.all())  # noqa: SIM118
    if whole_level:
        conn.execute(text("SET LOCAL enable_mergejoin = on"))
    return names, rows


def _case_rows_on(engine: Engine, sql: str, params: dict[str, Any],
                  whole_level: bool = True) -> tuple[list[str], list]:
    with engine.connect() as conn:
        return _case_rows(conn, sql, params, whole_level)


def aggregate(conn: Connection, window: Window, level: str, cal: WorkingCalendar,
              repeat_days: int = 30, code: str | None = None,
              names: set[str] | None = None, shards: int | None = None,
              days: bool | None = None,
              boundaries: long_window.Boundaries | None = None) -> Aggregates:
    """All aggregates for every key of ``level`` (or the one ``code``) in ``window``; ``names``
    limits the per-class families to those a model reads (None: every class); ``shards``
    forces the number of parallel case queries (default: 2 above SHARD_MIN_KEYS keys).
    ``days``: count from the day aggregates (True), from the cases (False), or from the day
    aggregates when they were counted on this calendar, limits and repeat reach (None).
    ``boundaries``: the running totals' boundaries shared with another window counted in the
    same snapshot (score_with_previous)."""
    n = check_level(level)
    filters = filters_for(n, code)
    params: dict[str, Any] = {"n": n, "start": window.start, "end": window.end, "code": code,
                              "repeat_days": repeat_days}
    level_keys = keys_of_level(conn, n, code)
    keys, pos = level_keys.keys, level_keys.pos
    cols: dict[str, np.ndarray] = {"area_km2": level_keys.area_km2.copy()}
    case_families, part_classes = _families(conn, names)
    families = "".join(f", count(*) FILTER (WHERE left(c.category_key, 3) = '{f[6:]}') "
                       f'AS "{f}"' for f in case_families)
    pending, counts = None, cached(conn, level, part_classes) if code is None else None
    if code is None and counts is None:
        # A whole level: the parts / 9+X inventory is independent of the cases, so count it on
        # a second connection meanwhile (and leave the second core to it: no case shards).
        pending = _POOL.submit(inventory_on, conn.engine, level, part_classes, keys, params)
    if days is None:
        days = day_aggregates.usable(conn, cal, repeat_days)
    case_params = {**params, **calendar_params(cal, window), **category_params(conn, cal)}
    p90 = dict(long_window.P90_EXACT)
    long_params = {**case_params, "tz": cal.timezone,
                   **day_aggregates.window_params(window, cal)}
    lay = long_window.layout_for(conn, long_params, case_families) if (
        days and code is None and shards is None) else None
    if lay is not None:
        jobs: list[tuple[str, dict[str, Any]]] = []
        cols.update(long_window.aggregate_long(conn, lay, cal, long_params, level_keys,
                                               case_families, boundaries))
        p90 = dict(long_window.P90_SKETCH)
    elif days and code is None and shards is None:
        # a short window of a whole level: its day rows and live cases summed in numpy, the
        # p90 exact (layers/health/short.py)
        jobs = []
        cols.update(short_window.aggregate_short(conn, cal, long_params, level_keys,
                                                 case_families))
    elif days:
        jobs = _day_jobs(cal, code, keys, counts is not None, shards, filters, case_families,
                         {**case_params, "tz": cal.timezone,
                          **day_aggregates.window_params(window, cal)})
    else:
        jobs = _case_jobs(cal, code, keys, counts is not None, shards, filters, families,
                          case_params)
    futures = [_POOL.submit(_case_rows_on, conn.engine, sql, p, not days)
               for sql, p in jobs[1:]]
    for names_, rows_ in [_case_rows(conn, *jobs[0], code is None and not days)
                          for _ in jobs[:1]] + [f.result() for f in futures]:
        fill_rows(cols, pos, len(keys), names_, rows_)
    if counts is None:
        counts = pending.result() if pending else inventory(conn, level, code, part_classes,
                                                              keys, params)
    cols.update({k: v.copy() for k, v in counts.items()})
    for name in [*AGGREGATES, *case_families]:  # a window without data has every aggregate
        cols.setdefault(name, np.full(len(keys), np.nan if name in MEASURES else 0.0))
    return Aggregates(level, window, keys, cols, p90)


def _shard_filters(code: str | None, keys: list[str], inventory_cached: bool,
                   shards: int | None) -> list[tuple[str, str | None, str | None]]:
    """(SQL over c.grid_code, low, high) per shard: two grid-code ranges for a large level
    when the second core is free (the inventory cached), else one."""
    big = code is None and inventory_cached and len(keys) >= SHARD_MIN_KEYS
    count = shards or (2 if big else 1)
    return [("".join([" AND c.grid_code >= :shard_lo" if lo else "",
                      " AND c.grid_code < :shard_hi" if hi else ""]), lo, hi)
            for lo, hi in (_shards(keys, count) if count > 1 else [(None, None)])]


def _day_jobs(cal: WorkingCalendar, code: str | None, keys: list[str], inventory_cached: bool,
              shards: int | None, filters: dict[str, str], families: list[str],
              params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The day-aggregate query (days.sql), as one or two shards by grid-code range."""
    return [(day_aggregates.day_sql(cal, filters["code_filter"] + shard, families),
             {**params, "shard_lo": lo, "shard_hi": hi})
            for shard, lo, hi in _shard_filters(code, keys, inventory_cached, shards)]


def _case_jobs(cal: WorkingCalendar, code: str | None, keys: list[str], inventory_cached: bool,
               shards: int | None, filters: dict[str, str], families: str,
               case_params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The case query (cases.sql), as one or two shards by grid-code range."""
    jobs = []
    for shard, lo, hi in _shard_filters(code, keys, inventory_cached, shards):
        sql = sql_text("cases").format(
            handled=handled_sql(cal), hist=history_sql("probe" if code else "range"),
            families=families, shard_filter=shard, **filters)
        jobs.append((sql, {**case_params, "shard_lo": lo, "shard_hi": hi}))
    return jobs


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


_CACHE_LOCK = Lock()  # the two windows of a page count on two threads


def _reader(engine: Engine) -> Connection:
    """A connection whose reads share one snapshot: a window's boundaries, day rows and live
    cases (several statements) must not see a refresh between them."""
    return engine.connect().execution_options(isolation_level="REPEATABLE READ")


def _cached(conn: Connection, model: HealthModel, window: Window, level: str,
            cal: WorkingCalendar) -> tuple[tuple, Health | None]:
    cache_key = (str(conn.engine.url), str(window), level, id(model), model.indices, cal,
                 _versions(conn))
    with _CACHE_LOCK:
        health = _CACHE.get(cache_key)
        if health is not None:
            _CACHE.move_to_end(cache_key)
    return cache_key, health


def _count(conn: Connection, cache_key: tuple, model: HealthModel, window: Window, level: str,
           cal: WorkingCalendar, shared: long_window.Boundaries | None = None) -> Health:
    agg = aggregate(conn, window, level, cal, model.repeat_days,
                    names=model.aggregate_names(), boundaries=shared)
    health = Health(score_grids(model, agg.keys, agg.columns), agg)
    with _CACHE_LOCK:
        _CACHE[cache_key] = health
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return health


def _score_in(engine: Engine, snapshot: str | None, shared: long_window.Boundaries | None,
              model: HealthModel, window: Window, level: str, cal: WorkingCalendar) -> Health:
    """One window's scores (from the cache or counted) on a connection of its own, in the
    exported ``snapshot`` when given."""
    with _reader(engine) as conn:
        if snapshot is not None:
            conn.execute(text("SET TRANSACTION SNAPSHOT :s"), {"s": snapshot})
        cache_key, health = _cached(conn, model, window, level, cal)
        return health if health is not None else _count(conn, cache_key, model, window,
                                                        level, cal, shared)


def score(engine: Engine, model: HealthModel, window: Window, level: str,
          cal: WorkingCalendar) -> Health:
    """Scores of every key of a level; cached until any layer behind them changes (the layer
    versions bump inside the writing transaction, so a cached table is never stale)."""
    check_level(level)
    # bring the day aggregates up to the writes so far (the primary only; on a standby the
    # days written since the last refresh are counted live)
    day_aggregates.refresh(engine, cal, model.repeat_days)
    return _score_in(engine, None, None, model, window, level, cal)


def _export(conn: Connection) -> str | None:
    """The snapshot of ``conn``'s transaction for another connection to read, or None (the
    transaction is then over: the next statement begins another)."""
    try:
        return str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
    except DBAPIError:
        conn.rollback()
        return None


def score_with_previous(engine: Engine, model: HealthModel, window: Window, level: str,
                        cal: WorkingCalendar) -> tuple[Health, Health]:
    """The window's scores and the previous window's (for trends), counted at once on two
    connections reading one snapshot (the first's, exported to the second): the two agree
    with each other, and what both read is read once (the boundary between a year's window
    and the previous year's: long.Boundaries)."""
    check_level(level)
    day_aggregates.refresh(engine, cal, model.repeat_days)
    with _reader(engine) as conn:
        cache_key, health = _cached(conn, model, window, level, cal)
        snapshot = _export(conn)
        if snapshot is None:  # e.g. a server that cannot export it: two snapshots
            cache_key, health = _cached(conn, model, window, level, cal)
        shared = long_window.Boundaries() if snapshot is not None else None
        pending = _PREVIOUS.submit(_score_in, engine, snapshot, shared, model,
                                   window.previous(), level, cal)
        try:
            if health is None:
                health = _count(conn, cache_key, model, window, level, cal, shared)
        finally:
            wait([pending])  # the exported snapshot lives as long as this transaction
    return health, pending.result()


def scored(engine: Engine, model: HealthModel, window: Window, level: str, code: str,
           cal: WorkingCalendar) -> Health:
    """The level's scores, after checking that ``code`` is one of its current keys."""
    health = score(engine, model, window, level, cal)
    if code not in health.aggregates.keys:
        raise NotFound(f"no current {level} with code {code!r}", level=level, code=code)
    return health
