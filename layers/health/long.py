"""City health of a long window from the running totals (layers/health/runs.py): for every key
of a level, the window's figures as the difference of two month boundaries' totals, corrected
by the day rows between the window's ends and those boundaries, without the stored rows it
counts live, plus its live cases (sql/runs.sql). Exact for every additive figure (counts, the
mean handling time); the p90 of handling time comes from the summed histograms, within
runs.BOUND of the exact figure (the answer says so: :data:`P90_SKETCH`).

A window of at most EXACT_MAX_DAYS whole days is counted from its day rows as before
(layers/health/days.py), exactly: the caller picks the path with :func:`layout_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date, timedelta
from threading import Lock
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gridcore.calendar import WorkingCalendar
from layers.health import runs
from layers.health.days import facts_sql, live_source, open_window_sql
from layers.health.keys import LevelKeys
from layers.health.queries import dirty_sql, sql_text

__all__ = ["EXACT_MAX_DAYS", "P90_EXACT", "P90_SKETCH", "Boundaries", "aggregate_long",
           "layout_for"]

# Windows of at most this many whole days read their day rows (exact p90); longer ones the
# running totals. Measured at 10 M cases (benchmarks/README.md, "agg4").
EXACT_MAX_DAYS = 45
P90_EXACT: dict[str, Any] = {"method": "exact", "relative_error": 0.0}
P90_SKETCH: dict[str, Any] = {"method": "log-binned histogram", "relative_error":
                              round(runs.BOUND, 4), "absolute_error_min": 0.5}

def _part(name: str) -> str:
    body = sql_text("runs").split(f"-- {name}\n", 1)[1]
    return body.split("\n-- ", 1)[0]


def layout_for(conn: Connection, params: dict[str, Any], families: list[str]
               ) -> runs.Layout | None:
    """The running totals' layout when this window should read them: longer than
    EXACT_MAX_DAYS whole days, runs stored on the day aggregates' basis, every family asked
    for among theirs."""
    if (params["last_day"] - params["first_day"]).days <= EXACT_MAX_DAYS:
        return None
    lay = runs.layout(conn)
    if lay is None or any(f[6:] not in lay.families for f in families):
        return None
    return lay


def _edge(lay: runs.Layout, d: date) -> tuple[date, date, date, int]:
    """The boundary nearest to day ``d`` and the day rows between: running total up to d =
    S(boundary) + sign · rows[lo, hi)."""
    m0 = date(d.year, d.month, 1)
    m1 = (m0 + timedelta(days=32)).replace(day=1)
    near = [m for m in (m0, m1) if lay.first_month <= m <= lay.last_month]
    if not near:
        near = [lay.first_month if d < lay.first_month else lay.last_month]
    m = min(near, key=lambda b: abs((b - d).days))
    return (m, m, d, 1) if m <= d else (m, d, m, -1)


def add_rows(acc: np.ndarray, ki: np.ndarray, vals: np.ndarray, sign: int = 1) -> None:
    """acc[ki] += sign · vals, rows of the same key summed; rows with a key < 0 are left out.
    Distinct keys (a level of grids: one row per grid) take a plain indexed add; otherwise a
    sort and np.add.reduceat (np.add.at is unbuffered and slow on wide rows)."""
    keep = ki >= 0
    if not keep.all():
        ki, vals = ki[keep], vals[keep]
    if not len(ki):
        return
    step = np.diff(ki)
    if len(ki) == len(acc) and ki[0] == 0 and bool(np.all(step == 1)):
        # every key once, in key order (a boundary: its rows come in grid-code order, as the
        # keys): a plain add, not a scatter (30–100 ms a boundary at 60,290 grids)
        if sign > 0:
            acc += vals
        else:
            acc -= vals
        return
    order = np.argsort(ki, kind="stable")
    k = ki[order]
    if len(k) == 1 or bool(np.all(k[1:] != k[:-1])):
        if sign > 0:
            acc[ki] += vals
        else:
            acc[ki] -= vals
        return
    v = vals[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    summed = np.add.reduceat(v, starts, axis=0, dtype=acc.dtype)  # uint16 bins would wrap
    if sign > 0:
        acc[k[starts]] += summed
    else:
        acc[k[starts]] -= summed


class _Sums:
    """Per key: the figures, families, histogram, handling sum, open and overdue counts."""

    def __init__(self, lay: runs.Layout, keys: int) -> None:
        self.lay = lay
        self.figs = np.zeros((keys, lay.ints), dtype=np.int64)
        self.hist = np.zeros((keys, runs.BINS), dtype=np.int32)
        self.work = np.zeros(keys, dtype=float)
        self.open = np.zeros(keys, dtype=np.int64)
        self.overdue = np.zeros(keys, dtype=np.int64)

    def family_index(self, prefixes: list[str]) -> np.ndarray:
        at = {f: i for i, f in enumerate(self.lay.families)}
        return np.fromiter((at.get(f, -1) for f in prefixes), dtype=np.int64,
                           count=len(prefixes))

    def counts(self, ki: np.ndarray, signed: np.ndarray, families: list[str]) -> None:
        """Rows of the six day figures (signed) with their class families."""
        add_rows(self.figs[:, :6], ki, signed)
        fi = self.family_index(families)
        known = (fi >= 0) & (ki >= 0)
        np.add.at(self.figs, (ki[known], len(runs.FIGURES) + fi[known]), signed[known, 0])

    def values(self, ki: np.ndarray, minutes: np.ndarray, sign: np.ndarray) -> None:
        """Handling times (signed: +1 counted, −1 taken away) into the histograms."""
        ok = (ki >= 0) & ~np.isnan(minutes)
        ki, minutes, sign = ki[ok], minutes[ok], sign[ok]
        keys = len(self.work)
        self.figs[:, 6] += np.bincount(ki, weights=sign, minlength=keys).astype(np.int64)
        self.work += np.bincount(ki, weights=sign * minutes, minlength=keys)
        flat = ki * runs.BINS + runs.bins_of(minutes)
        self.hist += np.bincount(flat, weights=sign, minlength=keys * runs.BINS).astype(
            np.int32).reshape(keys, runs.BINS)


def _keys_of(grids: list[str], n: int, pos: dict[str, int]) -> np.ndarray:
    """Each grid's (or prefix's) key position, −1 for a grid no longer current."""
    if not grids:
        return np.zeros(0, dtype=np.int64)
    codes, inverse = np.unique(np.array(grids, dtype=object), return_inverse=True)
    at = np.fromiter((pos.get(str(c)[:n], -1) for c in codes), dtype=np.int64,
                     count=len(codes))
    return at[inverse]


def key_positions(codes: np.ndarray, keys: np.ndarray, n: int) -> np.ndarray:
    """Each grid code's (bytes) key position among ``keys`` (bytes: grid codes or their
    prefixes of ``n`` characters), −1 for a grid that is no longer current."""
    if not len(codes) or not len(keys):
        return np.full(len(codes), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    pre = codes.astype(f"S{n}")
    at = np.minimum(np.searchsorted(ordered, pre), len(keys) - 1)
    return np.where(ordered[at] == pre, order[at], -1).astype(np.int64)


_Read = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class Boundaries:
    """The boundaries read for the windows of one page, each once: a year's window and the
    previous year's share the boundary between them (four reads become three). The windows
    must read one snapshot (scores.score_with_previous exports the first window's to the
    second's connection): a boundary read in another snapshot could hold a refresh the rest
    of the window has not seen. The first window to ask reads it; the other waits for it."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._reads: dict[tuple[date, int], Future[_Read]] = {}

    def get(self, month: date, n: int, read: Callable[[], _Read]) -> _Read:
        with self._lock:
            got = self._reads.get((month, n))
            mine = got is None
            if got is None:
                got = self._reads[(month, n)] = Future()
        if mine:
            try:
                got.set_result(read())
            except BaseException as exc:
                got.set_exception(exc)
                raise
        return got.result()


def _boundary(conn: Connection, acc: _Sums, month: date, sign: int, n: int,
              keys: np.ndarray, shared: Boundaries | None = None) -> None:
    """Add (or take away) every grid's running totals at a boundary."""
    def read() -> _Read:
        codes, figs, hist, sums = runs.read_boundary(conn, acc.lay, month)
        return key_positions(codes, keys, n), figs, hist, sums

    ki, figs, hist, sums = shared.get(month, n, read) if shared else read()
    if not len(ki):
        return
    add_rows(acc.figs, ki, figs, sign)
    add_rows(acc.hist, ki, hist, sign)
    add_rows(acc.work, ki, sums, sign)


def _stored(conn: Connection, acc: _Sums, params: dict[str, Any], n: int,
            pos: dict[str, int]) -> None:
    r = conn.execute(text(_part("stored").format(dirty=dirty_sql())), params).mappings().one()
    if r["grids"]:
        ki = _keys_of(r["grids"], n, pos)
        sign = np.asarray(r["signs"], dtype=np.int64)
        signed = np.stack([np.asarray(r[c], dtype=np.int64) for c in
                           ("cases", "registered", "closed", "closed_on_time", "reworked",
                            "repeat")], axis=1) * sign[:, None]
        acc.counts(ki, signed, r["families"])
    if r["work_grids"]:
        acc.values(_keys_of(r["work_grids"], n, pos), np.asarray(r["work"], dtype=float),
                   np.asarray(r["work_signs"], dtype=float))


@dataclass
class LiveRows:
    """A window's live cases (sql/runs.sql, "live"), one entry per case: its key position
    (−1: a grid no longer current), the six day figures, its class family, whether it is open
    and overdue, and its handling minutes (NaN: not closed or not counted)."""

    ki: np.ndarray
    signed: np.ndarray
    families: list[str]
    open: np.ndarray
    overdue: np.ndarray
    work: np.ndarray


def live_rows(conn: Connection, cal: WorkingCalendar, params: dict[str, Any],
              pos: dict[str, int]) -> LiveRows | None:
    facts = (facts_sql(cal, live_source(straddling=True, open_facts=True))
             + "\n    UNION ALL\n" + open_window_sql())
    sql = _part("live").format(facts=facts, dirty=dirty_sql(), straddle=dirty_sql("straddle"))
    r = conn.execute(text(sql), params).mappings().one()
    if not r["keys"]:
        return None
    ki = np.fromiter((pos.get(k, -1) for k in r["keys"]), dtype=np.int64, count=len(r["keys"]))
    flags = {c: np.asarray(r[c], dtype=bool).astype(np.int64) for c in
             ("registered", "closed", "closed_on_time", "reworked", "repeat", "open",
              "overdue")}
    signed = np.stack([np.ones(len(ki), dtype=np.int64), flags["registered"], flags["closed"],
                       flags["closed_on_time"], flags["reworked"], flags["repeat"]], axis=1)
    work = np.array([np.nan if w is None else w for w in r["work"]], dtype=float)
    return LiveRows(ki, signed, list(r["families"]), flags["open"], flags["overdue"], work)


def _live(conn: Connection, acc: _Sums, cal: WorkingCalendar, params: dict[str, Any],
          pos: dict[str, int]) -> None:
    live = live_rows(conn, cal, params, pos)
    if live is None:
        return
    acc.counts(live.ki, live.signed, live.families)
    add_rows(acc.open, live.ki, live.open)
    add_rows(acc.overdue, live.ki, live.overdue)
    acc.values(live.ki, live.work, np.ones(len(live.ki), dtype=float))


def aggregate_long(conn: Connection, lay: runs.Layout, cal: WorkingCalendar,
                   params: dict[str, Any], keys: LevelKeys, families: list[str],
                   shared: Boundaries | None = None) -> dict[str, np.ndarray]:
    """The case aggregates of every key (a whole level; ``params`` as days.py's window reads
    them) from the running totals; columns named as the recount's. ``shared``: boundaries
    read once for the windows of a page, in one snapshot."""
    n, pos = params["n"], keys.pos
    acc = _Sums(lay, len(keys.keys))
    m1, lo1, hi1, s1 = _edge(lay, params["last_day"])
    m0, lo0, hi0, s0 = _edge(lay, params["first_day"])
    if m1 != m0:
        _boundary(conn, acc, m1, 1, n, keys.key_bytes, shared)
        _boundary(conn, acc, m0, -1, n, keys.key_bytes, shared)
    _stored(conn, acc, {**params, "e1_lo": lo1, "e1_hi": hi1, "e1_sign": s1,
                        "e0_lo": lo0, "e0_hi": hi0, "e0_sign": -s0}, n, pos)
    _live(conn, acc, cal, params, pos)
    counted = acc.figs[:, 6]
    cols: dict[str, np.ndarray] = {name: acc.figs[:, j].astype(float)
                                   for j, name in enumerate(runs.FIGURES[:6])}
    cols["open"], cols["overdue"] = acc.open.astype(float), acc.overdue.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["handling_mean_h"] = np.where(counted > 0, acc.work / counted / 60.0, np.nan)
    cols["handling_p90_h"] = runs.p90_minutes(acc.hist) / 60.0
    at = {f: i for i, f in enumerate(lay.families)}
    for f in families:
        cols[f] = acc.figs[:, len(runs.FIGURES) + at[f[6:]]].astype(float)
    return cols
