"""Settled cases per H3 cell (``case_cell``, migration 0021_case_cells): what a low-zoom case
tile reads instead of every case ever reported under it.

Settled cases (closed, voided, merged) keep their place and colour ("none") for good, so their
counts per cell are kept at two levels, resolutions 8 and 10, by a statement trigger in the
writing transaction (signed deltas, insert only). A hexagon of a tile at display resolution
``r`` (6–10) is a contiguous range of cell integers at the level at or below it: the parent's
bits with the digits below ``r`` running from 0 to 7. Open cases are counted live.

How they stay equal to a recount: every write of ``case_record`` appends its deltas in the same
transaction; :func:`compact` folds a cell's rows into one (a committed delta it does not see
stays as it is); :func:`check` compares the sums with a recount from the cases
(``gridcore check --aggregates``), :func:`rebuild` counts them again (``--repair``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore.security.access import Scope
from layers.ogc.hexagons import h3_parent_masks

LEVELS = (8, 10)
H3_TEXT = "^[0-9a-f]{15,16}$"  # what the trigger counts as a cell (migration 0019)
_LOCK = 0x6365_6C6C  # "cell": one compaction or rebuild at a time
_SETTLED = "c.state IN ('closed', 'voided', 'merged')"
_RECOUNT = (f"SELECT l.res, gridcore_h3_cell(c.h3, l.res) AS cell, count(*)::int AS settled "
            f"FROM case_record c CROSS JOIN (VALUES (8), (10)) l(res) "
            f"WHERE c.h3 ~* '{H3_TEXT}' AND {_SETTLED} GROUP BY 1, 2")
_RES_SHIFT = 52
# The open cases by their level-10 cell (migration 0025): the index the live part of a tile
# reads; the conditions spelled as in the index's predicate, so the planner can use it.
OPEN_LEVEL = 10
OPEN_CELL_SQL = f"gridcore_h3_cell(t.h3, {OPEN_LEVEL})"
OPEN_SQL = f"t.state NOT IN ('closed', 'voided', 'merged') AND t.h3 ~* '{H3_TEXT}'"


def level_for(res: int, levels: tuple[int, ...] = LEVELS) -> int:
    """The stored level whose cells lie inside a hexagon of display resolution ``res``."""
    return next(level for level in levels if level >= min(res, levels[-1]))


def _below(res: int) -> int:
    """The bits of the digits finer than ``res``."""
    return (1 << (3 * (15 - res))) - 1


def child_range(parent: int, level: int, res: int) -> tuple[int, int]:
    """The integers of ``parent``'s (resolution ``res``) cells at ``level``: its bits with the
    resolution set to ``level`` and the digits below ``res`` from 0 (then 7 below ``level``)
    to all 7."""
    base = (parent & ~(0xF << _RES_SHIFT) & ~_below(res)) | (level << _RES_SHIFT)
    return base | _below(level), base | _below(res)


def serves(filters: tuple[tuple[str, str], ...], start: Any, end: Any, bbox: Any,
           scope: Scope | None) -> bool:
    """Whether a tile request counts every case under its hexagons (no filter, no time
    window, city-wide): only then do the stored counts stand for its settled cases."""
    return (not filters and start is None and end is None and bbox is None
            and (scope is None or scope.city_wide))


def coarse_ranges(parents: list[int], res: int, level: int, most: int = 24
                  ) -> list[tuple[int, int]]:
    """Few ranges of cell integers at ``level`` that hold every child of ``parents``
    (resolution ``res``): their ancestors up to two resolutions coarser while there are more
    than ``most``. A tile's hundreds of hexagons are then a few dozen index descents (on
    every partition of the cases), at the price of reading some cells around the tile: for
    the open cases, read from an index only (the settled counts keep one range a hexagon:
    their rows are read from the table, and more of them cost more than the descents)."""
    up = res
    ancestors = set(parents)
    while len(ancestors) > most and up > max(0, res - 2):
        up -= 1
        clear, setbits = h3_parent_masks(up)
        ancestors = {(p & clear) | setbits for p in ancestors}
    return [child_range(a, level, up) for a in sorted(ancestors)]


def settled(conn: Connection, parents: list[int], res: int) -> dict[int, int]:
    """Settled cases per hexagon (resolution ``res``) of ``parents``."""
    if not parents:
        return {}
    level = level_for(res)
    ranges = [child_range(p, level, res) for p in parents]
    rows = conn.execute(text(
        "SELECT p.parent, sum(c.settled) AS n FROM unnest(CAST(:parent AS bigint[]), "
        "CAST(:lo AS bigint[]), CAST(:hi AS bigint[])) AS p(parent, lo, hi) "
        "JOIN case_cell c ON c.res = :level AND c.cell BETWEEN p.lo AND p.hi GROUP BY 1"),
        {"parent": parents, "lo": [r[0] for r in ranges], "hi": [r[1] for r in ranges],
         "level": level}).all()
    return {int(r.parent): int(r.n) for r in rows if r.n}


@contextmanager
def locked(engine: Engine, key: int = _LOCK) -> Iterator[Connection]:
    """A REPEATABLE READ transaction (one snapshot: it deletes exactly the rows it counts)
    holding the cells' lock ``key``; the lock is taken on a connection of its own first."""
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        lock.commit()
        try:
            with engine.connect().execution_options(
                    isolation_level="REPEATABLE READ") as conn:
                conn.execute(text("SET LOCAL statement_timeout = 0"))
                yield conn
                conn.commit()
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            lock.commit()


def compact(engine: Engine) -> int:
    """Fold each cell's delta rows into one (cells counting nothing go). Returns the rows
    folded. Deltas committed after its snapshot are not seen, so not deleted: they stay."""
    with locked(engine) as conn:
        return int(conn.execute(text("""
            WITH many AS (SELECT res, cell FROM case_cell GROUP BY 1, 2 HAVING count(*) > 1
                                                                     OR sum(settled) = 0),
                 gone AS (DELETE FROM case_cell c USING many m
                          WHERE c.res = m.res AND c.cell = m.cell RETURNING c.*),
                 kept AS (INSERT INTO case_cell (res, cell, settled)
                          SELECT res, cell, sum(settled) FROM gone GROUP BY 1, 2
                          HAVING sum(settled) <> 0 RETURNING 1)
            SELECT (SELECT count(*) FROM gone)""")).scalar_one())


def rebuild(engine: Engine) -> int:
    """Count every cell again from the cases. Returns the number of rows."""
    with locked(engine) as conn:
        conn.execute(text("DELETE FROM case_cell"))
        conn.execute(text(f"INSERT INTO case_cell (res, cell, settled) {_RECOUNT}"))
        return int(conn.execute(text("SELECT count(*) FROM case_cell")).scalar_one())


@dataclass
class CellCheck:
    """The stored cell counts against a recount from the cases."""

    rows: int
    differ: list[dict[str, Any]]  # level, cell, stored, recounted

    @property
    def ok(self) -> bool:
        return not self.differ

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "differ": self.differ}


def check(engine: Engine, limit: int = 20) -> CellCheck:
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        rows = int(conn.execute(text("SELECT count(*) FROM case_cell")).scalar_one())
        differ = [dict(r) for r in conn.execute(text(f"""
            SELECT coalesce(s.res, r.res) AS level, coalesce(s.cell, r.cell) AS cell,
                   coalesce(s.settled, 0) AS stored, coalesce(r.settled, 0) AS recounted
            FROM (SELECT res, cell, sum(settled)::int AS settled FROM case_cell GROUP BY 1, 2
                  HAVING sum(settled) <> 0) s
            FULL JOIN ({_RECOUNT}) r ON r.res = s.res AND r.cell = s.cell
            WHERE s.settled IS DISTINCT FROM r.settled
            ORDER BY 1, 2 LIMIT :limit"""), {"limit": limit}).mappings()]
        conn.rollback()
    return CellCheck(rows, differ)
