"""Indicators and indices as data (指标体系): ``gridcore/data/health_indicators.json``.

An indicator is a name, a formula over named aggregates (:data:`AGGREGATES`), a unit, a
direction (higher is ``better`` or ``worse``), the index it feeds, its weight there, and its
normalisation: ``percentile`` (rank among the grids of the same level and window) or ``target``
(linear between ``worst`` → 0 and ``target`` → 1, clipped). Indices (城管指数, 综治指数,
风险指数, 平安指数) carry weights in the total. Every index score is 0–100 with 100 = healthiest
(for 风险指数 100 means least risk), so indices add up without sign tricks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from gridcore.errors import ValidationError
from gridcore.health.expression import Formula
from gridcore.lifecycle import OPEN_STATES, State

# The aggregates the aggregation SQL provides per grid (and per area), with what each counts and
# which records lie behind it: (layer, query parameters of /cases or of the OGC items) for the
# links of an explanation.
AGGREGATES: dict[str, tuple[str, str, dict[str, str]]] = {
    "area_km2": ("area of the grid or area, km²", "grids", {}),
    "cases": ("cases reported in the window (not voided or merged)", "cases", {}),
    "registered": ("cases registered (立案) in the window", "cases", {}),
    "closed": ("of those, closed (结案) by the window end", "cases", {"state": "closed"}),
    "closed_on_time": ("of those, closed within the class limit on the working calendar "
                       "(按期结案)", "cases", {"state": "closed"}),
    "reworked": ("of those, sent to rework (返工) at least once", "cases", {}),
    "handling_mean_h": ("mean working hours 立案→结案 (parked time excluded)", "cases",
                        {"state": "closed"}),
    "handling_p90_h": ("90th percentile working hours 立案→结案", "cases", {"state": "closed"}),
    "open": ("cases of the window still open at its end", "cases",
             {"state": ",".join(s for s in State if s in OPEN_STATES)}),
    "overdue": ("open cases past their deadline at the window end", "cases",
                {"overdue": "true"}),
    "repeat": ("cases in the window with an earlier case of the same class in the same H3 cell "
               "within the repeat horizon", "cases", {}),
    "parts": ("city parts (部件) in the grid", "parts", {}),
    "parts_intact": ("city parts in state intact (完好)", "parts", {"state": "intact"}),
    "parts_damaged": ("city parts in state damaged (破损)", "parts", {"state": "damaged"}),
    "parts_missing": ("city parts in state missing (丢失)", "parts", {"state": "missing"}),
    "parts_occupied": ("city parts in state occupied (占用)", "parts", {"state": "occupied"}),
    "entities": ("9+X governance records (counts only)", "entities", {}),
}
# Families of aggregates by class: cases_E04 (events of major class 04), cases_P01, and
# parts_0101 / parts_bad_0101 (parts of a class, and those damaged or missing); entities_<area>.
AGGREGATE_PATTERNS = (re.compile(r"^cases_[EP]\d{2}$"), re.compile(r"^parts(_bad)?_\d{4}$"),
                      re.compile(r"^entities_[a-z0-9_]{1,24}$"))
DIRECTIONS = ("better", "worse")
NORMALISATIONS = ("percentile", "target")


def is_aggregate(name: str) -> bool:
    return name in AGGREGATES or any(p.match(name) for p in AGGREGATE_PATTERNS)


@dataclass(frozen=True)
class Index:
    key: str
    name_zh: str
    name_en: str
    weight: float


@dataclass(frozen=True)
class Indicator:
    key: str
    name_zh: str
    name_en: str
    formula: Formula
    unit: str
    direction: str
    index: str
    weight: float
    normalise: str = "percentile"
    target: float | None = None
    worst: float | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "better"


def _need(row: Mapping[str, Any], key: str, where: str) -> Any:
    if row.get(key) in (None, ""):
        raise ValidationError(f"{where}: field {key!r} is required", field=key, where=where)
    return row[key]


def _weight(value: Any, where: str) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: weight {value!r} is not a number", field="weight",
                              where=where) from None
    if not weight >= 0:
        raise ValidationError(f"{where}: weight must be ≥ 0", field="weight", where=where)
    return weight


def _indicator(row: Mapping[str, Any], indices: set[str], where: str) -> Indicator:
    formula = Formula.parse(_need(row, "formula", where))
    unknown = sorted(n for n in formula.names if not is_aggregate(n))
    if unknown:
        raise ValidationError(f"{where}: formula {formula.text!r} reads unknown aggregate(s) "
                              f"{', '.join(unknown)}", field="formula", unknown=unknown,
                              where=where, known=sorted(AGGREGATES))
    direction = _need(row, "direction", where)
    if direction not in DIRECTIONS:
        raise ValidationError(f"{where}: direction must be 'better' or 'worse' (higher is …)",
                              field="direction", value=direction, where=where)
    index = _need(row, "index", where)
    if index not in indices:
        raise ValidationError(f"{where}: unknown index {index!r}; indices are "
                              f"{', '.join(sorted(indices))}", field="index", where=where)
    normalise = row.get("normalise", "percentile")
    if normalise not in NORMALISATIONS:
        raise ValidationError(f"{where}: normalise must be percentile or target",
                              field="normalise", value=normalise, where=where)
    target = worst = None
    if normalise == "target":
        try:
            target, worst = float(row["target"]), float(row["worst"])
        except (KeyError, TypeError, ValueError):
            raise ValidationError(f"{where}: target normalisation needs numbers 'target' and "
                                  "'worst'", field="target", where=where) from None
        if target == worst:
            raise ValidationError(f"{where}: target and worst must differ", field="target",
                                  where=where)
    return Indicator(key=_need(row, "key", where), name_zh=_need(row, "name_zh", where),
                     name_en=row.get("name_en", ""), formula=formula,
                     unit=row.get("unit", ""), direction=direction, index=index,
                     weight=_weight(row.get("weight", 1), where), normalise=normalise,
                     target=target, worst=worst)


@dataclass(frozen=True)
class HealthModel:
    indices: tuple[Index, ...]
    indicators: tuple[Indicator, ...]
    repeat_days: int = 30

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthModel:
        indices = tuple(Index(key=_need(r, "key", f"index {i}"),
                              name_zh=_need(r, "name_zh", f"index {i}"),
                              name_en=r.get("name_en", ""),
                              weight=_weight(r.get("weight", 1), f"index {i}"))
                        for i, r in enumerate(data.get("indices") or []))
        if not indices:
            raise ValidationError("health model: no indices", field="indices")
        keys = {i.key for i in indices}
        if len(keys) != len(indices):
            raise ValidationError("health model: duplicate index key", field="indices")
        indicators = tuple(_indicator(r, keys, f"indicator {r.get('key', i)!r}")
                           for i, r in enumerate(data.get("indicators") or []))
        seen: set[str] = set()
        for ind in indicators:
            if ind.key in seen or ind.key in keys or ind.key == "total":
                raise ValidationError(f"health model: indicator key {ind.key!r} is used twice",
                                      field="key", value=ind.key)
            seen.add(ind.key)
        empty = sorted(k for k in keys if not any(i.index == k for i in indicators))
        if empty:
            raise ValidationError(f"health model: index(es) {', '.join(empty)} have no "
                                  "indicator", field="indices", empty=empty)
        return cls(indices, indicators, int(data.get("repeat_days", 30)))

    @classmethod
    def default(cls) -> HealthModel:
        path = resources.files("gridcore") / "data" / "health_indicators.json"
        return cls.from_dict(json.loads(path.read_text("utf-8")))

    def index(self, key: str) -> Index:
        for idx in self.indices:
            if idx.key == key:
                return idx
        raise ValidationError(f"unknown index {key!r}; indices are "
                              f"{', '.join(self.index_keys())}", field="index", value=key,
                              allowed=self.index_keys())

    def index_keys(self) -> list[str]:
        return ["total", *(i.key for i in self.indices)]

    def check_index(self, key: str) -> str:
        """``key`` if it names the total, an index or an indicator, else a clear error."""
        if key == "total" or any(i.key == key for i in self.indices) or any(
                i.key == key for i in self.indicators):
            return key
        allowed = self.index_keys() + [i.key for i in self.indicators]
        raise ValidationError(f"unknown index {key!r}; choose one of {', '.join(allowed)}",
                              field="index", value=key, allowed=allowed)

    def aggregate_names(self) -> set[str]:
        return set().union(*(i.formula.names for i in self.indicators))

    def with_weights(self, index_weights: Mapping[str, float]) -> HealthModel:
        """The same model with other index weights in the total (configurable per request)."""
        for key in index_weights:
            self.index(key)
        return replace(self, indices=tuple(
            replace(i, weight=_weight(index_weights.get(i.key, i.weight), i.key))
            for i in self.indices))
