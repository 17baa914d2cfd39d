"""City parts per H3 cell, class and state (``part_cell``, migration 0022_part_cells): what a
low-zoom part tile reads instead of every part under it.

Counts are kept at two levels, resolutions 7 and 9, by statement triggers in the writing
transaction (signed deltas, insert only; the bulk import's COPY included). A hexagon of display
resolution ``r`` (4–9) is a contiguous range of cell integers at the level at or below it
(``case_cells.child_range``). A tile filtered by class, major class or state sums the rows that
match; any other filter (a name, a department, a grid, a date) counts the parts live.

How they stay equal to a recount: as ``case_cell`` (:mod:`layers.ogc.case_cells`) —
:func:`compact` folds, :func:`check` compares with a recount (``gridcore check --aggregates``),
:func:`rebuild` counts again (``--repair``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, text

from layers.exchange.imports.part_cell_counts import LEVELS
from layers.ogc.case_cells import H3_TEXT, CellCheck, child_range, level_for, locked

STATES = ("intact", "damaged", "missing", "occupied")
_LOCK = 0x7061_7274  # "part": one compaction or rebuild at a time
_SERVED = {"class_code": "c.class_code", "major": "left(c.class_code, 2)", "state": "c.state"}
_RECOUNT = (f"SELECT l.res, gridcore_h3_cell(p.h3, l.res) AS cell, p.class_code, p.state, "
            f"count(*)::int AS parts FROM city_part p CROSS JOIN (VALUES (7), (9)) l(res) "
            f"WHERE p.h3 ~* '{H3_TEXT}' AND ((('x' || lpad(p.h3, 16, '0'))::bit(64)::bigint "
            f">> 52) & 15) >= l.res GROUP BY 1, 2, 3, 4")


# Parts no level-7 cell counts (no stored cell, or one coarser than 7): few or none; a partial
# index (migration 0029, the predicate below word for word) finds them, so the class counts
# never read every part. "Not a cell" is NOT h3 ~* H3_TEXT spelled without the anchored
# case-insensitive expression, which cost the index build 2 µs a part (the bulk import).
UNCOUNTED = ("(h3 IS NULL OR length(h3) NOT IN (15, 16) OR h3 ~ '[^0-9a-fA-F]' "
             "OR ((('x' || lpad(h3, 16, '0'))::bit(64)::bigint >> 52) & 15) < 7)")
CLASS_COUNTS = (f"SELECT class_code, sum(n)::bigint AS n FROM ("
                f"SELECT class_code, sum(parts) AS n FROM part_cell WHERE res = 7 GROUP BY 1 "
                f"UNION ALL SELECT class_code, count(*) FROM city_part WHERE {UNCOUNTED} "
                f"GROUP BY 1) k GROUP BY 1 HAVING sum(n) > 0")


def serves(filters: tuple[tuple[str, str], ...], start: Any, end: Any, bbox: Any) -> bool:
    """Whether the stored counts answer a tile with these (cleaned) filters."""
    return start is None and end is None and bbox is None and all(
        name in _SERVED for name, _ in filters)


def counts(conn: Connection, parents: list[int], res: int,
           filters: tuple[tuple[str, str], ...] = ()) -> dict[int, dict[str, int]]:
    """Parts per hexagon (resolution ``res``) of ``parents`` and state, of the filtered
    classes and states."""
    if not parents:
        return {}
    level = level_for(res, LEVELS)
    ranges = [child_range(p, level, res) for p in parents]
    conds, params = [], {}
    for i, (name, values) in enumerate(filters):
        conds.append(f"{_SERVED[name]} = ANY(:f{i})")
        params[f"f{i}"] = values.split(",")
    rows = conn.execute(text(
        "SELECT p.parent, c.state, sum(c.parts) AS n FROM unnest(CAST(:parent AS bigint[]), "
        "CAST(:lo AS bigint[]), CAST(:hi AS bigint[])) AS p(parent, lo, hi) "
        "JOIN part_cell c ON c.res = :level AND c.cell BETWEEN p.lo AND p.hi "
        + "".join(f"AND {c} " for c in conds) + "GROUP BY 1, 2"),
        {"parent": parents, "lo": [r[0] for r in ranges], "hi": [r[1] for r in ranges],
         "level": level, **params}).all()
    found: dict[int, dict[str, int]] = {}
    for r in rows:
        if r.n:
            found.setdefault(int(r.parent), {})[r.state] = int(r.n)
    return found


def compact(engine: Engine) -> int:
    """Fold each cell's delta rows into one (rows counting nothing go). Returns the rows
    folded; deltas committed after its snapshot stay as they are."""
    with locked(engine, _LOCK) as conn:
        return int(conn.execute(text("""
            WITH many AS (SELECT res, cell, class_code, state FROM part_cell
                          GROUP BY 1, 2, 3, 4 HAVING count(*) > 1 OR sum(parts) = 0),
                 gone AS (DELETE FROM part_cell c USING many m
                          WHERE c.res = m.res AND c.cell = m.cell
                            AND c.class_code = m.class_code AND c.state = m.state
                          RETURNING c.*),
                 kept AS (INSERT INTO part_cell (res, cell, class_code, state, parts)
                          SELECT res, cell, class_code, state, sum(parts) FROM gone
                          GROUP BY 1, 2, 3, 4 HAVING sum(parts) <> 0 RETURNING 1)
            SELECT (SELECT count(*) FROM gone)""")).scalar_one())


def rebuild(engine: Engine) -> int:
    """Count every cell again from the parts. Returns the number of rows."""
    with locked(engine, _LOCK) as conn:
        conn.execute(text("DELETE FROM part_cell"))
        conn.execute(text(f"INSERT INTO part_cell (res, cell, class_code, state, parts) "
                          f"{_RECOUNT}"))
        return int(conn.execute(text("SELECT count(*) FROM part_cell")).scalar_one())


def check(engine: Engine, limit: int = 20) -> CellCheck:
    """The stored part counts against a recount from the parts (rows differing: level, cell,
    class_code, state, stored, recounted)."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        rows = int(conn.execute(text("SELECT count(*) FROM part_cell")).scalar_one())
        differ = [dict(r) for r in conn.execute(text(f"""
            SELECT coalesce(s.res, r.res) AS level, coalesce(s.cell, r.cell) AS cell,
                   coalesce(s.class_code, r.class_code) AS class_code,
                   coalesce(s.state, r.state) AS state,
                   coalesce(s.parts, 0) AS stored, coalesce(r.parts, 0) AS recounted
            FROM (SELECT res, cell, class_code, state, sum(parts)::int AS parts
                  FROM part_cell GROUP BY 1, 2, 3, 4 HAVING sum(parts) <> 0) s
            FULL JOIN ({_RECOUNT}) r ON r.res = s.res AND r.cell = s.cell
                 AND r.class_code = s.class_code AND r.state = s.state
            WHERE s.parts IS DISTINCT FROM r.parts
            ORDER BY 1, 2, 3, 4 LIMIT :limit"""), {"limit": limit}).mappings()]
        conn.rollback()
    return CellCheck(rows, differ)
