"""Case memory for dispatch (智能派遣): where did earlier cases like this one go?

Counts of departments per key, from the most specific key (class path + grid) to the most
general (the major class), with time decay so that a department that took over a class last
spring outweighs ten years of the old one. The probability for a new case is a smoothed back-off:
each level's counts are shrunk towards the level above it (a Dirichlet prior), so a community with
41 cases speaks for itself while a community with 2 mostly repeats the city.

Send-backs (退单) are negative evidence: a department that sent a class back in a place loses that
weight at the same keys (never below zero). The memory updates case by case (``add``), so the
dispatcher's decisions of this morning count this afternoon, without retraining anything.

Weights grow as 2^(t / half-life) instead of decaying, so adding a case never touches the
others; a query divides by the weight of its own time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

PLACE_LEVELS = ("grid", "community", "street", "district")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a case lies, by code or name at each level (None = unknown)."""

    grid: str | None = None
    community: str | None = None
    street: str | None = None
    district: str | None = None

    def at(self, level: str) -> str | None:
        value: str | None = getattr(self, level)
        return value


Key = tuple[str | None, ...]


@dataclass
class _Cell:
    weight: dict[int, float] = field(default_factory=dict)  # department index → grown weight
    count: dict[int, int] = field(default_factory=dict)  # raw number of cases (explanations)
    refused: dict[int, float] = field(default_factory=dict)  # send-back weight
    refused_count: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Evidence:
    """The most specific level that has enough cases, for the explanation sentence."""

    level: str
    department: str
    cases_there: int
    cases_total: int
    refusals: int


class CaseMemory:
    """Time-decayed department counts per (class path prefix, place) key."""

    def __init__(self, half_life_days: float = 180.0, shrink: float = 1.0,
                 place_levels: Sequence[str] = PLACE_LEVELS) -> None:
        self.half_life_days = half_life_days
        self.shrink = shrink
        self.place_levels = tuple(place_levels)
        self.departments: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[Key, _Cell] = {}
        self._totals: dict[int, float] = {}
        self._epoch: datetime | None = None
        self.refusals = 0  # send-backs remembered (none: nothing to look up per department)

    def _grow(self, at: datetime) -> float:
        if self._epoch is None:
            self._epoch = at
        days = (at - self._epoch).total_seconds() / 86400.0
        return float(2.0 ** (days / self.half_life_days))

    def _dept(self, name: str) -> int:
        if name not in self._index:
            self._index[name] = len(self.departments)
            self.departments.append(name)
        return self._index[name]

    def keys(self, path: Sequence[str], place: Place) -> list[tuple[str, Key]]:
        """Keys from most specific to most general, each with a readable level name."""
        full = tuple(path)
        out: list[tuple[str, Key]] = []
        for level in self.place_levels:
            code = place.at(level)
            if code is not None:
                out.append((level, (*full, f"{level}={code}")))
        for depth in range(len(full), 0, -1):
            out.append(("class" if depth == len(full) else f"class[:{depth}]", full[:depth]))
        return out

    def add(self, path: Sequence[str], place: Place, department: str, at: datetime,
            weight: float = 1.0) -> None:
        """Remember that a case of class ``path`` at ``place`` went to ``department``."""
        d = self._dept(department)
        g = weight * self._grow(at)
        for _, key in self.keys(path, place):
            cell = self._cells.setdefault(key, _Cell())
            cell.weight[d] = cell.weight.get(d, 0.0) + g
            cell.count[d] = cell.count.get(d, 0) + 1
        self._totals[d] = self._totals.get(d, 0.0) + g

    def refuse(self, path: Sequence[str], place: Place, department: str, at: datetime,
               weight: float = 1.0) -> None:
        """A send-back (退单): ``department`` refused a case of ``path`` at ``place``."""
        d = self._dept(department)
        g = weight * self._grow(at)
        self.refusals += 1
        for _, key in self.keys(path, place):
            cell = self._cells.setdefault(key, _Cell())
            cell.refused[d] = cell.refused.get(d, 0.0) + g
            cell.refused_count[d] = cell.refused_count.get(d, 0) + 1

    def proba(self, path: Sequence[str], place: Place, at: datetime) -> NDArray[np.float64]:
        """Smoothed department probabilities (over ``self.departments``) for a new case."""
        n = len(self.departments)
        now = self._grow(at)
        prior = np.zeros(n)
        for d, w in self._totals.items():
            prior[d] = w
        p = prior / prior.sum() if prior.sum() > 0 else np.full(n, 1.0 / max(n, 1))
        for _, key in reversed(self.keys(path, place)):
            cell = self._cells.get(key)
            if cell is None:
                continue
            counts = np.zeros(n)
            for d, w in cell.weight.items():
                counts[d] = w
            for d, w in cell.refused.items():
                counts[d] = max(counts[d] - w, 0.0)
            counts /= now
            p = (counts + self.shrink * p) / (counts.sum() + self.shrink)
        return p

    def evidence(self, path: Sequence[str], place: Place, department: str,
                 min_cases: int = 3) -> Evidence | None:
        """"Similar cases in <level> went to <department>: 37 of 41" at the most specific level
        with at least ``min_cases`` cases where the department took or refused any."""
        d = self._index.get(department)
        if d is None:
            return None
        for level, key in self.keys(path, place):
            cell = self._cells.get(key)
            if cell is None:
                continue
            total = sum(cell.count.values())
            # "0 of 41" explains nothing: look further up for a level where it had cases
            if total >= min_cases and (cell.count.get(d, 0) or cell.refused_count.get(d, 0)):
                return Evidence(level, department, cell.count.get(d, 0), total,
                                cell.refused_count.get(d, 0))
        return None

    def refused_weight(self, path: Sequence[str], place: Place, department: str,
                       at: datetime) -> float:
        """Decayed send-back weight of ``department`` at the most specific key that has any."""
        d = self._index.get(department)
        if d is None:
            return 0.0
        for _, key in self.keys(path, place):
            cell = self._cells.get(key)
            if cell is not None and d in cell.refused:
                return cell.refused[d] / self._grow(at)
        return 0.0

