"""City health of a short window (at most long.EXACT_MAX_DAYS whole days) for a whole level,
exactly, summed in numpy: the window's stored day rows (sql/short.sql, the rows sql/days.sql
reads) and its live cases (sql/runs.sql, "live": the live cases days.sql counts) come as
arrays; the counts are summed per key and the handling times' mean and p90 taken exactly —
percentile_cont(0.9)'s interpolation between the two order statistics around rank
0.9 · (n − 1) — instead of days.sql's GROUP BY and per-key sorts on the server, which took
most of a month's window at 10 M cases (benchmarks/README.md, health6). The same figures as
days.sql and as the recount from the cases (tests/db/test_health_days.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gridcore.calendar import WorkingCalendar
from layers.health.long import live_rows
from layers.health.queries import dirty_sql, sql_text

__all__ = ["aggregate_short", "exact_work", "positions"]

_FIGURES = ("cases", "registered", "closed", "closed_on_time", "reworked", "repeat")


def positions(codes: list[str], keys: list[str], n: int) -> np.ndarray:
    """Each grid code's key position (its first ``n`` characters among ``keys``), −1 for a
    grid that is no longer current; fixed-width numpy strings, not a dict per row."""
    if not codes or not keys:
        return np.full(len(codes), -1, dtype=np.int64)
    ordered_keys = np.array(keys)
    order = np.argsort(ordered_keys, kind="stable")
    ordered = ordered_keys[order]
    pre = np.array(codes).astype(f"<U{n}")
    at = np.minimum(np.searchsorted(ordered, pre), len(keys) - 1)
    return np.where(ordered[at] == pre, order[at], -1).astype(np.int64)


def exact_work(ki: np.ndarray, minutes: np.ndarray, keys: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per key, the mean and the p90 (percentile_cont(0.9), as PostgreSQL interpolates it) of
    the handling minutes, in hours; NaN for a key without any. Rows with a key < 0 or NaN
    minutes are left out."""
    ok = (ki >= 0) & ~np.isnan(minutes)
    ki, minutes = ki[ok], minutes[ok]
    mean, p90 = np.full(keys, np.nan), np.full(keys, np.nan)
    if not len(ki):
        return mean, p90
    order = np.lexsort((minutes, ki))
    ordered = minutes[order]
    counts = np.bincount(ki, minlength=keys)
    sums = np.bincount(ki, weights=minutes, minlength=keys)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    rank = 0.9 * (counts[has] - 1)
    lo, hi = np.floor(rank), np.ceil(rank)
    v_lo = ordered[starts[has] + lo.astype(np.int64)]
    v_hi = ordered[starts[has] + hi.astype(np.int64)]
    p90[has] = (v_lo + (v_hi - v_lo) * (rank - lo)) / 60.0
    mean[has] = sums[has] / counts[has] / 60.0
    return mean, p90


def _sum(acc: np.ndarray, ki: np.ndarray, values: np.ndarray) -> None:
    keep = ki >= 0
    acc += np.bincount(ki[keep], weights=values[keep], minlength=len(acc))


def aggregate_short(conn: Connection, cal: WorkingCalendar, params: dict[str, Any],
                    keys: list[str], families: list[str]) -> dict[str, np.ndarray]:
    """The case aggregates of every key of a level in a short window (``params`` as days.py's
    window reads them), exactly; columns named as the recount's."""
    n, count = params["n"], len(keys)
    figs = {name: np.zeros(count) for name in (*_FIGURES, "open", "overdue")}
    fam = np.zeros((count, len(families)))
    fam_at = {f[6:]: i for i, f in enumerate(families)}
    work_ki, work_min = [], []

    def families_of(ki: np.ndarray, prefixes: list[str], cases: np.ndarray) -> None:
        fi = np.fromiter((fam_at.get(p, -1) for p in prefixes), dtype=np.int64,
                         count=len(prefixes))
        keep = (ki >= 0) & (fi >= 0)
        fam[:] += np.bincount(ki[keep] * len(families) + fi[keep], weights=cases[keep],
                              minlength=fam.size).reshape(fam.shape)

    r = conn.execute(text(sql_text("short").format(dirty=dirty_sql())), params).mappings().one()
    if r["grids"]:
        ki = positions(r["grids"], keys, n)
        for name in _FIGURES:
            _sum(figs[name], ki, np.asarray(r[name], dtype=float))
        if families:
            families_of(ki, r["families"], np.asarray(r["cases"], dtype=float))
    if r["work_grids"]:
        work_ki.append(positions(r["work_grids"], keys, n))
        work_min.append(np.asarray(r["work"], dtype=float))
    live = live_rows(conn, cal, params, {k: i for i, k in enumerate(keys)})
    if live is not None:
        for j, name in enumerate(_FIGURES):
            _sum(figs[name], live.ki, live.signed[:, j].astype(float))
        _sum(figs["open"], live.ki, live.open.astype(float))
        _sum(figs["overdue"], live.ki, live.overdue.astype(float))
        if families:
            families_of(live.ki, live.families, np.ones(len(live.ki)))
        work_ki.append(live.ki)
        work_min.append(live.work)
    cols: dict[str, np.ndarray] = dict(figs)
    ki_all = np.concatenate(work_ki) if work_ki else np.zeros(0, dtype=np.int64)
    min_all = np.concatenate(work_min) if work_min else np.zeros(0)
    cols["handling_mean_h"], cols["handling_p90_h"] = exact_work(ki_all, min_all, count)
    for i, f in enumerate(families):
        cols[f] = fam[:, i].copy()
    return cols
