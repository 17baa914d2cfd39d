"""Running totals of city health (累计汇总): per grid and local month boundary, the sum of the
day aggregates (``health_day``) of every day before it, so a long window reads two boundaries
per grid plus the day rows between each of its ends and the nearest boundary — a cost set by
the number of grids, not by the cases in the window (issue 25: health of any window ≤ 1 s).

What a run row holds (``v``: little-endian int32 figures, then uint16 histogram bins):
cases, registered, closed, closed on time, reworked, repeats, handling times counted, one count
per case family, and a log-binned histogram of the handling minutes; ``work_sum`` their sum.
Every figure but the p90 is additive, so a window's figure is exact: the difference of two
running totals, corrected by the day rows at its edges, minus the stored rows it must count
live (straddling its end, or dirty), plus its live cases (the same live cases as
``sql/days.sql``). The p90 does not combine from parts: it comes from the histogram, whose bins
grow by GAMMA, so a bin's middle is within BOUND of any time in it (and half a minute for times
under a minute) — DDSketch's mapping (Masson et al., VLDB 2019), a few numpy lines here rather
than a dependency because the bins must be stored per grid and subtracted.

Running totals are derived from ``health_day`` only: whatever rewrites day rows (a rebuild, a
refresh of dirty grid days, an archive) rewrites the grids' runs in the same transaction.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

__all__ = ["BOUND", "GAMMA", "Layout", "bins_of", "check_on", "layout", "p90_minutes",
           "read_boundary", "rebuild_on", "update_grids"]

GAMMA = 1.1
BINS = 150  # bin 149 starts at 1.1**148 ≈ 1.3 M minutes (≈ 11 years of working time)
BOUND = (GAMMA - 1) / (GAMMA + 1)  # ≈ 4.76 %
FIGURES = ("cases", "registered", "closed", "closed_on_time", "reworked", "repeat", "work_n")
_DAY_FIGURES = FIGURES[:6]
_GRID_CHUNK = 1000
_REPRESENTATIVE = np.concatenate([[0.5], 2 * GAMMA ** np.arange(1, BINS) / (GAMMA + 1)])


def bins_of(minutes: np.ndarray) -> np.ndarray:
    """The histogram bin of each handling time in minutes: 0 below a minute, then bin b holds
    [GAMMA**(b-1), GAMMA**b)."""
    v = np.asarray(minutes, dtype=float)
    out = np.zeros(v.shape, dtype=np.int64)
    big = v >= 1
    out[big] = np.minimum(BINS - 1, 1 + np.floor(np.log(v[big]) / np.log(GAMMA)))
    return out


def p90_minutes(hist: np.ndarray) -> np.ndarray:
    """percentile_cont(0.9) of each row's histogram: the two order statistics around rank
    0.9·(n − 1) taken as their bins' middles, interpolated as PostgreSQL does (NaN when
    empty)."""
    cum = np.asarray(hist, dtype=np.int32).cumsum(axis=1, dtype=np.int32)
    n = cum[:, -1]
    rank = 0.9 * np.maximum(n - 1, 0)
    lo, hi = np.floor(rank), np.ceil(rank)
    b_lo = (cum > lo[:, None]).argmax(axis=1)
    b_hi = (cum > hi[:, None]).argmax(axis=1)
    v_lo, v_hi = _REPRESENTATIVE[b_lo], _REPRESENTATIVE[b_hi]
    out = v_lo + (rank - lo) * (v_hi - v_lo)
    return np.where(n > 0, out, np.nan)


@dataclass(frozen=True)
class Layout:
    """How run rows are laid out and which boundaries exist."""

    families: tuple[str, ...]  # case families (class key prefixes), in column order
    first_month: date
    last_month: date
    day_basis: str

    @property
    def ints(self) -> int:
        return len(FIGURES) + len(self.families)

    def decode(self, blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(figures int64 [rows, ints], histogram int64 [rows, BINS]) of run rows."""
        width = 4 * self.ints + 2 * BINS
        raw = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), width)
        figs = raw[:, :4 * self.ints].copy().view("<i4").astype(np.int64)
        hist = raw[:, 4 * self.ints:].copy().view("<u2").astype(np.int64)
        return figs, hist

    def encode(self, figs: np.ndarray, hist: np.ndarray) -> list[bytes]:
        if hist.size and hist.max() > np.iinfo(np.uint16).max:
            raise OverflowError("a grid's histogram bin passed 65,535 handling times")
        a = figs.astype("<i4").view(np.uint8).reshape(len(figs), -1)
        b = hist.astype("<u2").view(np.uint8).reshape(len(hist), -1)
        rows = np.concatenate([a, b], axis=1)
        return [r.tobytes() for r in rows]


_CODE_BYTES = 15  # unit grid codes (GB/T 30428): 15 ASCII digits
_COPY_HEADER = 19  # PGCOPY signature (11), flags (4), header extension length (4)


def read_boundary(conn: Connection, lay: Layout, month: date
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every grid's running totals at one boundary, in no particular order: (codes as
    bytes ``S15``, figures int64, histogram uint16, work sums). Read as a binary COPY of
    fixed-width rows parsed by numpy: a plain query sends the 22 MB of run rows as hex
    text, which took most of a boundary's time at 60,000 grids (benchmarks/README.md,
    health5); so would an ORDER BY (a sort) or a concatenation on the server."""
    width = 4 * lay.ints + 2 * BINS
    raw_conn: Any = conn.connection.dbapi_connection  # psycopg2's: copy_expert
    buf = io.BytesIO()
    with raw_conn.cursor() as cursor:
        sql = cursor.mogrify("COPY (SELECT grid_code, v, work_sum FROM health_run "
                             "WHERE month = %s) TO STDOUT WITH (FORMAT binary)",
                             (month,)).decode()
        cursor.copy_expert(sql, buf)
    data = buf.getbuffer()[_COPY_HEADER:-2]  # without the header and the trailer (-1)
    dtype = np.dtype([("fields", ">i2"), ("code_len", ">i4"), ("code", f"S{_CODE_BYTES}"),
                      ("v_len", ">i4"), ("v", "u1", (width,)), ("sum_len", ">i4"),
                      ("sum", ">f8")])
    rows = len(data) // dtype.itemsize
    recs = np.frombuffer(data, dtype=dtype, count=rows)
    if len(data) != rows * dtype.itemsize or np.any(recs["code_len"] != _CODE_BYTES) or \
            np.any(recs["v_len"] != width):
        del recs
        data.release()
        return _boundary_rows(conn, lay, month)  # a code of other length or non-ASCII bytes
    figs = np.ascontiguousarray(recs["v"][:, :4 * lay.ints]).view("<i4").astype(np.int64)
    hist = np.ascontiguousarray(recs["v"][:, 4 * lay.ints:]).view("<u2")
    return recs["code"].copy(), figs, hist, recs["sum"].astype(float)


def _boundary_rows(conn: Connection, lay: Layout, month: date
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """read_boundary() row by row, for grid codes that are not 15 ASCII characters."""
    stored = conn.execute(text("SELECT grid_code, v, work_sum FROM health_run WHERE month = :m"),
                          {"m": month}).all()
    if not stored:
        return (np.zeros(0, dtype="S1"), np.zeros((0, lay.ints), np.int64),
                np.zeros((0, BINS), np.int32), np.zeros(0))
    figs, hist = lay.decode([bytes(r[1]) for r in stored])
    return (np.array([r[0].encode() for r in stored]), figs, hist.astype(np.uint16),
            np.array([r[2] for r in stored], dtype=float))


def _month(d: date) -> date:
    return date(d.year, d.month, 1)


def _months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def _add_months(d: date, k: int) -> date:
    m = d.month - 1 + k
    return date(d.year + m // 12, m % 12 + 1, 1)


def month_of_index(first: date, k: int) -> date:
    return _add_months(first, k)


def layout(conn: Connection) -> Layout | None:
    """The stored runs' layout when they match the day aggregates' basis, else None."""
    row = conn.execute(text(
        "SELECT r.families, r.first_month, r.last_month, r.day_basis FROM health_run_basis r "
        "JOIN health_day_basis d ON d.basis = r.day_basis LIMIT 1")).first()
    if row is None:
        return None
    return Layout(tuple(row[0]), row[1], row[2], row[3])


def _families(conn: Connection) -> tuple[str, ...]:
    return tuple(sorted({k[:3] for (k,) in conn.execute(text("SELECT key FROM category"))}))


_ROWS = ("SELECT grid_code, day, category_key, cases, registered, closed, closed_on_time, "
         "reworked, repeat, work_min FROM health_day WHERE grid_code = ANY(:g) ")


def _runs(lay: Layout, grids: list[str], rows: Sequence[Any], base_month: date,
          base: tuple[np.ndarray, np.ndarray, np.ndarray] | None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Running totals of ``grids`` at every boundary base_month … last_month, from the day rows
    on or after base_month and the totals ``base`` at base_month (zeros when None): arrays
    figures [G, K, ints], histogram [G, K, BINS], work sums [G, K]."""
    g_count, k_count = len(grids), _months_between(base_month, lay.last_month) + 1
    fam = {f: i for i, f in enumerate(lay.families)}
    gi_of = {g: i for i, g in enumerate(grids)}
    figs = np.zeros((g_count, k_count, lay.ints), dtype=np.int64)
    hist = np.zeros((g_count, k_count, BINS), dtype=np.int64)
    sums = np.zeros((g_count, k_count), dtype=float)
    if rows:
        gi = np.fromiter((gi_of[r[0]] for r in rows), dtype=np.int64, count=len(rows))
        # a day row counts at every boundary after its month: its month index + 1
        ki = np.fromiter((_months_between(base_month, r[1]) + 1 for r in rows), dtype=np.int64,
                         count=len(rows))
        keep = ki < k_count
        gi, ki = gi[keep], ki[keep]
        kept = [r for r, k in zip(rows, keep, strict=True) if k]
        vals = np.array([r[3:9] for r in kept], dtype=np.int64).reshape(len(kept), 6)
        for j in range(6):
            np.add.at(figs[:, :, j], (gi, ki), vals[:, j])
        fi = np.fromiter((fam.get(r[2][:3], -1) for r in kept), dtype=np.int64, count=len(kept))
        known = fi >= 0
        np.add.at(figs, (gi[known], ki[known], len(FIGURES) + fi[known]), vals[known, 0])
        lengths = np.fromiter((len(r[9]) for r in kept), dtype=np.int64, count=len(kept))
        flat = np.array([w for r in kept for w in r[9]], dtype=float)
        gw, kw = np.repeat(gi, lengths), np.repeat(ki, lengths)
        ok = ~np.isnan(flat)
        np.add.at(figs[:, :, 6], (gw[ok], kw[ok]), 1)
        np.add.at(hist, (gw[ok], kw[ok], bins_of(flat[ok])), 1)
        np.add.at(sums, (gw[ok], kw[ok]), flat[ok])
    figs, hist, sums = figs.cumsum(axis=1), hist.cumsum(axis=1), sums.cumsum(axis=1)
    if base is not None:
        figs += base[0][:, None, :]
        hist += base[1][:, None, :]
        sums += base[2][:, None]
    return figs, hist, sums


def _write(conn: Connection, lay: Layout, grids: list[str], first: date,
           runs: tuple[np.ndarray, np.ndarray, np.ndarray],
           from_k: np.ndarray | None = None) -> None:
    """COPY the runs of ``grids`` (boundary k = first + k months), from boundary ``from_k``
    of each grid on when given; a grid's all-zero boundaries (before its first case) get no
    row: read as zeros."""
    figs, hist, sums = runs
    keep = figs.any(axis=2)
    if from_k is not None:
        keep &= np.arange(sums.shape[1])[None, :] >= from_k[:, None]
    gi, ki = np.nonzero(keep)
    if not len(gi):
        return
    blobs = lay.encode(figs[gi, ki], hist[gi, ki])
    buf = io.StringIO()
    for g, k, blob, total in zip(gi.tolist(), ki.tolist(), blobs, sums[gi, ki].tolist(),
                                 strict=True):
        buf.write(f"{_add_months(first, k).isoformat()}\t{grids[g]}\t\\\\x{blob.hex()}\t"
                  f"{total!r}\n")
    buf.seek(0)
    cursor = conn.connection.cursor()
    cursor.copy_expert("COPY health_run (month, grid_code, v, work_sum) FROM STDIN", buf)


_OWNER = ("SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
          "WHERE oid = 'health_run'::regclass")


def rebuild_on(conn: Connection) -> int:
    """Count every grid's running totals again from ``health_day`` (in the caller's
    transaction). Returns the number of run rows; none when the day aggregates have no
    basis yet."""
    conn.execute(text("DELETE FROM health_run"))
    conn.execute(text("DELETE FROM health_run_basis"))
    day_basis = conn.execute(text("SELECT basis FROM health_day_basis")).scalar()
    if day_basis is None:
        return 0
    first_day = conn.execute(text("SELECT min(day) FROM health_day")).scalar()
    last_day = conn.execute(text("SELECT greatest(max(day), CAST(now() AS date)) "
                                 "FROM health_day")).scalar()
    today = datetime.now(UTC).date()
    first = _month(first_day or today)
    lay = Layout(_families(conn), first, _add_months(_month(max(last_day or today, today)), 1),
                 day_basis)
    grids = [g for (g,) in conn.execute(text("SELECT DISTINCT grid_code FROM health_day "
                                             "ORDER BY 1"))]
    for i in range(0, len(grids), _GRID_CHUNK):
        chunk = grids[i:i + _GRID_CHUNK]
        rows = conn.execute(text(_ROWS), {"g": chunk}).all()
        _write(conn, lay, chunk, first, _runs(lay, chunk, rows, first, None))
    # written grid by grid; a window reads one boundary of every grid: store them in order.
    # CLUSTER needs the table's owner (the migration, the owner's CLI); a server's own full
    # rebuild runs as the application role and leaves the order to the owner's next rebuild
    # (the figures are the same, only the boundary reads are slower).
    if conn.execute(text(_OWNER)).scalar():
        conn.execute(text("CLUSTER health_run USING health_run_pkey"))
    conn.execute(text(
        "INSERT INTO health_run_basis (day_basis, families, gamma, bins, first_month, "
        "last_month, built_at) VALUES (:b, :f, :g, :n, :m0, :m1, now())"),
        {"b": day_basis, "f": list(lay.families), "g": GAMMA, "n": BINS, "m0": lay.first_month,
         "m1": lay.last_month})
    return len(grids) * (_months_between(lay.first_month, lay.last_month) + 1)


def _extend(conn: Connection, lay: Layout, new_last: date) -> Layout:
    """Boundaries up to ``new_last`` for every grid: the last stored boundary's totals plus
    the day rows since (a month that began since the runs were counted)."""
    old = lay.last_month
    bigger = Layout(lay.families, lay.first_month, new_last, lay.day_basis)
    raw_codes, s_figs, s_hist, s_sums = read_boundary(conn, lay, old)
    codes = [c.decode() for c in raw_codes.tolist()]
    rows = conn.execute(text(_ROWS.replace("grid_code = ANY(:g)", "day >= :m")),
                        {"m": old}).all()
    grids = sorted(set(codes) | {r[0] for r in rows})
    at = {g: i for i, g in enumerate(grids)}
    figs = np.zeros((len(grids), lay.ints), dtype=np.int64)
    hist = np.zeros((len(grids), BINS), dtype=np.int64)
    sums = np.zeros(len(grids), dtype=float)
    if codes:
        idx = np.array([at[g] for g in codes])
        figs[idx], hist[idx], sums[idx] = s_figs, s_hist, s_sums
    runs = _runs(bigger, grids, rows, old, (figs, hist, sums))
    later = (runs[0][:, 1:], runs[1][:, 1:], runs[2][:, 1:])  # boundary 0 is `old` itself
    _write(conn, bigger, grids, _add_months(old, 1), later)
    conn.execute(text("UPDATE health_run_basis SET last_month = :m"), {"m": new_last})
    return bigger


def update_grids(conn: Connection, grids: list[str], since: list[date] | None = None) -> None:
    """Count the running totals of ``grids`` again from their day rows (after a refresh
    rewrote their days from ``since`` on: only the boundaries after it change), in the
    caller's transaction; a day before the first boundary counts everything again."""
    lay = layout(conn)
    if lay is None:
        return
    today = datetime.now(UTC).date()
    if _add_months(_month(today), 1) > lay.last_month:
        lay = _extend(conn, lay, _add_months(_month(today), 1))
    if not grids:
        return
    rows = conn.execute(text(_ROWS), {"g": grids}).all()
    if any(r[1] < lay.first_month or r[1] >= lay.last_month for r in rows):
        rebuild_on(conn)
        return
    if since is None:
        since = [lay.first_month - timedelta(days=1)] * len(grids)
    conn.execute(text("DELETE FROM health_run h USING unnest(CAST(:g AS text[]), "
                      "CAST(:m AS date[])) AS u(g, m) WHERE h.grid_code = u.g AND h.month > u.m"),
                 {"g": grids, "m": since})
    from_k = np.array([max(0, _months_between(lay.first_month, d) + 1) for d in since])
    _write(conn, lay, grids, lay.first_month, _runs(lay, grids, rows, lay.first_month, None),
           from_k)


@dataclass
class RunCheck:
    rows: int
    differ: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return not self.differ

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "differ": self.differ}


def check_on(conn: Connection, day_table: str = "health_day", limit: int = 20) -> RunCheck:
    """The stored running totals against a recount from the day rows of ``day_table`` (the
    check's fresh recount of health_day from the cases)."""
    lay = layout(conn)
    rows = int(conn.execute(text("SELECT count(*) FROM health_run")).scalar_one())
    if lay is None:
        return RunCheck(rows, [{"problem": "no running totals for the day aggregates' basis"}])
    grids = [g for (g,) in conn.execute(text(
        f"SELECT grid_code FROM {day_table} UNION SELECT grid_code FROM health_run ORDER BY 1"))]
    differ: list[dict[str, Any]] = []
    source = _ROWS.replace("FROM health_day", f"FROM {day_table}")
    for i in range(0, len(grids), _GRID_CHUNK):
        chunk = grids[i:i + _GRID_CHUNK]
        figs, hist, sums = _runs(lay, chunk, conn.execute(text(source), {"g": chunk}).all(),
                                 lay.first_month, None)
        stored = conn.execute(text("SELECT grid_code, month, v, work_sum FROM health_run "
                                   "WHERE grid_code = ANY(:g)"), {"g": chunk}).all()
        seen = np.zeros(sums.shape, dtype=bool)
        pos = {g: j for j, g in enumerate(chunk)}
        if stored:
            s_figs, s_hist = lay.decode([bytes(r[2]) for r in stored])
        for j, r in enumerate(stored):
            g, k = pos[r[0]], _months_between(lay.first_month, r[1])
            if not 0 <= k < sums.shape[1]:
                differ.append({"grid_code": r[0], "month": str(r[1]), "problem": "extra"})
                continue
            seen[g, k] = True
            if (not np.array_equal(figs[g, k], s_figs[j]) or not np.array_equal(hist[g, k],
                                                                               s_hist[j])
                    or not np.isclose(sums[g, k], r[3], rtol=1e-9, atol=1e-6)):
                differ.append({"grid_code": r[0], "month": str(r[1]),
                               "stored": dict(zip(FIGURES, s_figs[j][:7].tolist(),
                                                  strict=True)),
                               "recount": dict(zip(FIGURES, figs[g, k][:7].tolist(),
                                                   strict=True))})
        for g, k in zip(*np.nonzero(~seen & figs.any(axis=2)), strict=True):
            differ.append({"grid_code": chunk[g], "month": str(_add_months(lay.first_month, k)),
                           "problem": "missing"})
        if len(differ) >= limit:
            break
    return RunCheck(rows, differ[:limit])
