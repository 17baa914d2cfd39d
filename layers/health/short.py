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

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gridcore.calendar import WorkingCalendar
from layers.health.keys import LevelKeys
from layers.health.long import key_positions, live_rows
from layers.health.queries import dirty_sql, sql_text

__all__ = ["Stored", "aggregate_short", "exact_work", "positions", "stored_rows"]

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


def _section(name: str) -> str:
    body = sql_text("short").split(f"-- {name}\n", 1)[1]
    return body.split("\n-- ", 1)[0]


def _part(name: str) -> str:
    """A shape of sql/short.sql ("copy" or "arrays") with the window's day rows ("rows")."""
    rows = _section("rows").format(dirty=dirty_sql())
    return _section(name).format(rows=rows)


_COPY_HEADER = 19  # PGCOPY signature (11), flags (4), header extension length (4)
_CODE_BYTES = 15  # unit grid codes (GB/T 30428): 15 ASCII digits
_ROW = np.dtype([("fields", ">i2"), ("code_len", ">i4"), ("code", f"S{_CODE_BYTES}"),
                 *[(f"{p}{j}", ">i4") for j in range(7) for p in ("len", "v")],
                 ("w_len", ">i4"), ("w", ">f8")])
_BIND = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@dataclass
class Stored:
    """The window's stored day rows, one entry per day row or per handling time: the key
    position (−1: a grid no longer current), the six day figures, the family's position
    (−1: none asked for) and the handling minutes (NaN on a day row)."""

    ki: np.ndarray
    figs: np.ndarray
    fam: np.ndarray
    minutes: np.ndarray


def stored_rows(conn: Connection, params: dict[str, Any], keys: LevelKeys | list[str],
                families: list[str], copy: bool = True) -> Stored:
    """The stored rows as a binary COPY of fixed-width rows parsed by numpy (as runs.py reads
    a boundary: a plain query sends 150,000 rows' arrays as text at 10 M cases); as arrays
    when a grid code is not 15 ASCII characters, or ``copy`` is False."""
    n = params["n"]
    if not isinstance(keys, LevelKeys):
        keys = LevelKeys.of(n, keys, np.zeros(len(keys)))
    fams = [f[6:] for f in families]
    if copy:
        got = _stored_copy(conn, {**params, "fams": fams}, keys)
        if got is not None:
            return got
    r = conn.execute(text(_part("arrays")), params).mappings().one()
    at = {f: i for i, f in enumerate(fams)}
    ki = positions(list(r["grids"] or []), keys.keys, n)
    figs = np.stack([np.asarray(r[c] or [], dtype=np.int64) for c in _FIGURES], axis=1)
    fam = np.fromiter((at.get(f, -1) for f in r["families"] or []), dtype=np.int64,
                      count=len(ki))
    wk = positions(list(r["work_grids"] or []), keys.keys, n)
    return Stored(np.concatenate([ki, wk]),
                  np.concatenate([figs, np.zeros((len(wk), len(_FIGURES)), np.int64)]),
                  np.concatenate([fam, np.full(len(wk), -1, np.int64)]),
                  np.concatenate([np.full(len(ki), np.nan),
                                  np.asarray(r["work"] or [], dtype=float)]))


def _stored_copy(conn: Connection, params: dict[str, Any], keys: LevelKeys) -> Stored | None:
    raw: Any = conn.connection.dbapi_connection  # psycopg2's: copy_expert
    buf = io.BytesIO()
    with raw.cursor() as cursor:
        sql = cursor.mogrify(_BIND.sub(r"%(\1)s", _part("copy")), params).decode()
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT binary)", buf)
    data = buf.getbuffer()[_COPY_HEADER:-2]  # without the header and the trailer (-1)
    rows = len(data) // _ROW.itemsize
    recs = np.frombuffer(data, dtype=_ROW, count=rows)
    lens = [recs[f"len{j}"] for j in range(7)]
    if len(data) != rows * _ROW.itemsize or np.any(recs["code_len"] != _CODE_BYTES) or \
            any(np.any(x != 4) for x in lens) or np.any(recs["w_len"] != 8):
        del recs, lens
        data.release()
        return None
    ki = key_positions(recs["code"], keys.key_bytes, params["n"])
    figs = np.stack([recs[f"v{j}"].astype(np.int64) for j in range(6)], axis=1)
    out = Stored(ki, figs, recs["v6"].astype(np.int64) - 1, recs["w"].astype(float))
    del recs, lens
    data.release()
    return out


def aggregate_short(conn: Connection, cal: WorkingCalendar, params: dict[str, Any],
                    keys: LevelKeys, families: list[str], copy: bool = True
                    ) -> dict[str, np.ndarray]:
    """The case aggregates of every key of a level in a short window (``params`` as days.py's
    window reads them), exactly; columns named as the recount's. ``copy``: read the stored
    rows by binary COPY (else as arrays)."""
    count = len(keys.keys)
    figs = {name: np.zeros(count) for name in (*_FIGURES, "open", "overdue")}
    fam = np.zeros((count, len(families)))

    def families_of(ki: np.ndarray, fi: np.ndarray, cases: np.ndarray) -> None:
        keep = (ki >= 0) & (fi >= 0)
        fam[:] += np.bincount(ki[keep] * len(families) + fi[keep], weights=cases[keep],
                              minlength=fam.size).reshape(fam.shape)

    st = stored_rows(conn, params, keys, families, copy)
    for j, name in enumerate(_FIGURES):
        _sum(figs[name], st.ki, st.figs[:, j].astype(float))
    if families:
        families_of(st.ki, st.fam, st.figs[:, 0].astype(float))
    work_ki, work_min = [st.ki], [st.minutes]
    live = live_rows(conn, cal, params, keys.pos)
    if live is not None:
        for j, name in enumerate(_FIGURES):
            _sum(figs[name], live.ki, live.signed[:, j].astype(float))
        _sum(figs["open"], live.ki, live.open.astype(float))
        _sum(figs["overdue"], live.ki, live.overdue.astype(float))
        if families:
            at = {f[6:]: i for i, f in enumerate(families)}
            fi = np.fromiter((at.get(p, -1) for p in live.families), dtype=np.int64,
                             count=len(live.families))
            families_of(live.ki, fi, np.ones(len(live.ki)))
        work_ki.append(live.ki)
        work_min.append(live.work)
    cols: dict[str, np.ndarray] = dict(figs)
    cols["handling_mean_h"], cols["handling_p90_h"] = exact_work(
        np.concatenate(work_ki), np.concatenate(work_min), count)
    for i, f in enumerate(families):
        cols[f] = fam[:, i].copy()
    return cols
