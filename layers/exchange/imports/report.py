"""What an import did (ImportReport) and what it refused (Problems → ImportRejected).

Row numbers are 1-based record numbers as the file holds them: the first feature of a GeoJSON /
GeoPackage / Shapefile is row 1, the first data line of a CSV (the line after the header) is
row 1. Problems are collected over the whole file before anything is written, so one refused
import lists every bad row at once, not only the first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gridcore.errors import ImportRejected

MAX_LISTED = 200  # beyond this many problems the list is cut (the count stays exact)


@dataclass
class ImportReport:
    """Counts of one import (导入报告); ``repairs`` lists every repaired geometry by row."""

    layer: str
    inserted: int = 0
    updated: int = 0
    repaired: int = 0
    closed: int = 0  # grids: previous current rows closed by the new generation
    kept: int = 0  # grids: unchanged rows kept current; cases: rows changed in gridcore since
    generation: int | None = None
    repairs: list[dict[str, Any]] = field(default_factory=list)
    crs: str | None = None  # what was assumed about the coordinates, in words
    snapped: list[dict[str, Any]] = field(default_factory=list)  # rows snapped to a grid
    no_new_generation: bool = False  # grids: nothing changed, so no new generation was opened
    unchanged: int = 0  # cases: re-imported rows identical to the stored ones
    notes: list[str] = field(default_factory=list)  # what the import assumed, in words
    # where the time went, in order: (phase, seconds) — a big import shows its phases
    phases: list[tuple[str, float]] = field(default_factory=list)

    def timed(self, phase: str, since: float) -> float:
        """Record ``phase`` as lasting from ``since`` (``time.perf_counter()``) until now;
        returns now, the start of the next phase."""
        now = time.perf_counter()
        self.phases.append((phase, now - since))
        return now

    def phase_line(self) -> str:
        """The phases in one line ("" when none were recorded)."""
        if not self.phases:
            return ""
        total = sum(s for _, s in self.phases)
        return "took " + ", ".join(f"{p} {s:.1f} s" for p, s in self.phases) + (
            f" (total {total:.1f} s)")

    def summary(self) -> str:
        parts = [f"{self.layer}: {self.inserted} inserted", f"{self.updated} updated"]
        if self.no_new_generation:
            parts.append(f"nothing changed: no new generation ({self.kept} grids unchanged "
                         "and current)")
        elif self.generation is not None:
            parts.append(f"generation {self.generation} ({self.closed} closed, "
                         f"{self.kept} kept unchanged)")
        if self.layer == "cases":
            parts += [f"{self.unchanged} unchanged", f"{self.kept} kept (changed in gridcore "
                                                     "since they were imported)"]
        else:
            parts.append(f"{self.repaired} geometries repaired")
        if self.snapped:
            parts.append(f"{len(self.snapped)} snapped to the nearest grid")
        lines = [", ".join(parts)]
        if self.crs:
            lines.append(f"  {self.crs}")
        lines += [f"  row {r['row']}: {r['reason']}" for r in self.repairs]
        lines += [f"  row {r['row']}: {r['reason']}" for r in self.snapped[:MAX_LISTED]]
        if len(self.snapped) > MAX_LISTED:
            lines.append(f"  … {len(self.snapped) - MAX_LISTED} more snapped rows")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "inserted": self.inserted, "updated": self.updated,
                "repaired": self.repaired, "closed": self.closed, "kept": self.kept,
                "generation": self.generation, "no_new_generation": self.no_new_generation,
                "unchanged": self.unchanged, "repairs": self.repairs, "crs": self.crs,
                "notes": self.notes, "phases_s": dict(self.phases),
                "snapped": self.snapped[:MAX_LISTED], "snapped_count": len(self.snapped)}


class Problems:
    """Collects every bad row; ``raise_if_any`` refuses the import with all of them."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[dict[str, Any]] = []

    def add(self, row: int | None, field_name: str | None, reason: str) -> None:
        self.items.append({"row": row, "field": field_name, "reason": reason})

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise rejected(self.what, self.items)


def rejected(what: str, problems: list[dict[str, Any]]) -> ImportRejected:
    n = len(problems)
    first = problems[0]
    where = f"row {first['row']}" if first.get("row") is not None else "file"
    if first.get("field"):
        where += f", field {first['field']!r}"
    more = f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else ""
    listed = problems[:MAX_LISTED]
    return ImportRejected(f"{what} import rejected, nothing written: {where}: "
                          f"{first['reason']}{more}", problems=listed, problem_count=n)


def reject_file(what: str, reason: str, field_name: str | None = None) -> ImportRejected:
    """A refusal about the whole file (unreadable, no CRS, missing column)."""
    return rejected(what, [{"row": None, "field": field_name, "reason": reason}])


def format_problems(problems: list[dict[str, Any]]) -> str:
    """One line per problem, for the command line."""
    lines = []
    for p in problems:
        where = f"row {p['row']}" if p.get("row") is not None else "file"
        if p.get("field"):
            where += f" [{p['field']}]"
        lines.append(f"  {where}: {p['reason']}")
    return "\n".join(lines)


def refuse_database_errors(what: str):  # noqa: ANN201
    """A loader decorator: rows the database itself refuses (a NUL byte in a text, a constraint
    the checks above did not foresee) become an ImportRejected too — the transaction is
    already rolled back, so nothing was written."""
    import functools

    import psycopg2
    from sqlalchemy.exc import DataError, IntegrityError

    refused = (DataError, IntegrityError, psycopg2.DataError, psycopg2.IntegrityError)

    def wrap(loader):  # noqa: ANN001, ANN202
        @functools.wraps(loader)
        def run(*args: Any, **kwargs: Any):  # noqa: ANN202
            try:
                return loader(*args, **kwargs)
            except refused as exc:
                reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
                raise rejected(what, [{"row": None, "field": None,
                                       "reason": "the database refused the rows: "
                                                 + " ".join(reason[:3])}]) from None
        return run
    return wrap
