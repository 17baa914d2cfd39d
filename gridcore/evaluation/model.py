"""Evaluation (考评) defined as data: ``gridcore/data/evaluation_indicators.json``.

Three kinds of party are evaluated — departments (专业部门), areas (区域: district, street,
community) and grid workers (网格员 / 监督员) — each with its indicators: a formula over the
kind's aggregates (:data:`AGGREGATES`, counted per party by ``layers.evaluation``), its source
term in CJ/T 292 / GB/T 30428.7 and whether that formula text was verified (it was not: the
data file says so), a weight in the party's score, the normalisation (``target``: linear from
``worst`` → 0 to ``target`` → 1, clipped) and the *penalty* an approved appeal (申诉) waives.

Scoring is the health check's (``gridcore.health.scoring``): each kind is scored as one index
whose terms are its weighted indicators, so every score is explained term by term the same way.
An indicator that ``requires`` data the city does not record (patrol tracks) is reported as
"no data" rather than as a zero.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from gridcore.errors import ValidationError
from gridcore.health.expression import Formula
from gridcore.health.model import DIRECTIONS, HealthModel, Index, Indicator
from gridcore.taxonomy import TimeLimit

# Per kind: aggregate → what it counts (the records behind it are the cases with that flag).
AGGREGATES: dict[str, dict[str, str]] = {
    "department": {
        "due": "应处置数: handled in the period, or unhandled at its end with the handling "
               "deadline in it",
        "due_timed": "应处置数 less the cases whose lateness was waived by an approved appeal",
        "handled": "处置数: the department reported back (反馈) in the period",
        "handled_on_time": "按时处置数: handled within the handling limit",
        "handled_late": "超期处置数: handled after the limit (appeals waived excluded)",
        "overdue_unhandled": "due, not handled, past the limit (appeals waived excluded)",
        "reworked": "返工数: sent to rework in the period (appeals waived excluded)",
        "dispatched": "派遣数: dispatched to the department in the period",
        "received": "dispatched to the department or refused by it in the period",
        "sent_back": "退单数: send-backs by the department in the period",
        "sent_back_wrongful": "send-backs followed by a dispatch to the same department",
        "closed": "结案数: the department's cases closed in the period",
        "close_due": "应结案数 of the department's cases",
        "caller_cases": "接诉即办: hotline and citizen cases closed in the period",
        "callbacks_reached": "of those, the caller was reached by the callback (回访)",
        "callbacks_resolved": "of those reached, the caller says the problem is solved",
        "callbacks_satisfied": "of those reached, satisfied or basically satisfied (满意)",
        "whistles": "吹哨: calls to the department blown in the period (报到 due)",
        "whistles_on_time": "of those, reported (报到) by the deadline",
        "tasks": "协同: assisting tasks given to the department in the period (not released)",
        "tasks_on_time": "of those, done with feedback by the task's deadline",
    },
    "area": {
        "worker_reports": "reports by grid workers in the period",
        "registered": "立案数: registered in the period",
        "registered_by_workers": "registered in the period, first reported by a grid worker",
        "close_due": "应结案数: closed in the period, or open at its end with the whole-case "
                     "deadline in it",
        "close_due_timed": "应结案数 less the cases whose lateness was waived by an appeal",
        "closed": "结案数: closed in the period",
        "closed_on_time": "按期结案数: closed within the whole-case limit",
        "reworked": "returned to rework in the period (appeals waived excluded)",
        "self_handled": "自处置: solved on the spot by the reporter and closed in the period",
        "caller_cases": "接诉即办: hotline and citizen cases closed in the period",
        "callbacks_reached": "of those, the caller was reached by the callback (回访)",
        "callbacks_resolved": "of those reached, the caller says the problem is solved",
        "callbacks_satisfied": "of those reached, satisfied or basically satisfied (满意)",
    },
    "worker": {
        "reports": "上报数: reports filed by the worker in the period",
        "valid_reports": "有效上报数: of those, verified and not voided",
        "decided_reports": "of those, verified or voided",
        "verified": "核实数: verifications by the worker in the period",
        "verified_on_time": "verified within the verification limit",
        "verified_timed": "核实数 less late verifications waived by an appeal",
        "checked": "核查数: first on-site checks by the worker in the period",
        "checked_on_time": "checked within the class's check limit",
        "checked_timed": "核查数 less late checks waived by an appeal",
        "missed": "漏报数: registered cases in the worker's grids first reported by others",
        "registered_in_grids": "registered cases in the worker's grids",
        "patrol_covered_m2": "grid area within reach of the worker's patrol tracks",
        "grid_m2": "area of the worker's grids",
        "self_handled": "自处置: the worker's reports solved on the spot, closed in the period",
    },
}
OPTIONAL_DATA = {"patrol": ("patrol_covered_m2", "grid_m2")}


@dataclass(frozen=True)
class Measure:
    """One evaluation indicator: the health-style :class:`Indicator` plus its source."""

    indicator: Indicator
    term: str
    source: str
    verified: bool
    definition: str = ""
    penalty: str | None = None
    requires: str | None = None

    @property
    def key(self) -> str:
        return self.indicator.key

    def as_dict(self) -> dict[str, Any]:
        i = self.indicator
        return {"key": i.key, "name_zh": i.name_zh, "name_en": i.name_en, "term": self.term,
                "formula": i.formula.text, "unit": i.unit, "direction": i.direction,
                "weight": i.weight, "normalise": i.normalise, "target": i.target,
                "worst": i.worst, "penalty": self.penalty, "requires": self.requires,
                "definition": self.definition, "source": self.source,
                "formula_verified": self.verified}


@dataclass(frozen=True)
class Kind:
    key: str
    name_zh: str
    name_en: str
    measures: tuple[Measure, ...]
    penalties: dict[str, dict[str, str]]
    levels: tuple[str, ...] = ()

    @property
    def model(self) -> HealthModel:
        """The kind as a one-index health model, for scoring and explanations."""
        return HealthModel((Index(self.key, self.name_zh, self.name_en, 1.0),),
                           tuple(m.indicator for m in self.measures), 0)

    def measure(self, key: str) -> Measure:
        for m in self.measures:
            if m.key == key:
                return m
        raise ValidationError(f"unknown indicator {key!r} of {self.key}", field="indicator",
                              value=key, allowed=[m.key for m in self.measures])

    def check_penalty(self, penalty: str) -> str:
        if penalty not in self.penalties:
            raise ValidationError(f"{self.key} evaluations know the penalties "
                                  f"{', '.join(self.penalties)}, not {penalty!r}",
                                  field="penalty", value=penalty,
                                  allowed=list(self.penalties))
        return penalty


def _measure(kind: str, row: Mapping[str, Any], penalties: Mapping[str, Any]) -> Measure:
    where = f"evaluation {kind} indicator {row.get('key')!r}"
    for need in ("key", "name_zh", "term", "formula", "direction", "source"):
        if row.get(need) in (None, ""):
            raise ValidationError(f"{where}: field {need!r} is required", field=need)
    formula = Formula.parse(row["formula"])
    unknown = sorted(n for n in formula.names if n not in AGGREGATES[kind])
    if unknown:
        raise ValidationError(f"{where}: formula reads unknown aggregate(s) "
                              f"{', '.join(unknown)}", field="formula", unknown=unknown,
                              known=sorted(AGGREGATES[kind]))
    if row["direction"] not in DIRECTIONS:
        raise ValidationError(f"{where}: direction must be better or worse",
                              field="direction")
    normalise = row.get("normalise", "target")
    target, worst = row.get("target"), row.get("worst")
    if normalise == "target" and float(row.get("weight", 0)) > 0 and (
            target is None or worst is None or target == worst):
        raise ValidationError(f"{where}: a weighted indicator needs a target and a worst value",
                              field="target")
    penalty = row.get("penalty")
    if penalty is not None and penalty not in penalties:
        raise ValidationError(f"{where}: unknown penalty {penalty!r}", field="penalty")
    requires = row.get("requires")
    if requires is not None and requires not in OPTIONAL_DATA:
        raise ValidationError(f"{where}: unknown data {requires!r}", field="requires")
    weight = float(row.get("weight", 0))
    if not weight >= 0:
        raise ValidationError(f"{where}: weight must be ≥ 0", field="weight")
    indicator = Indicator(row["key"], row["name_zh"], row.get("name_en", ""), formula,
                          row.get("unit", ""), row["direction"], kind, weight,
                          normalise if weight > 0 else "target",
                          float(target) if target is not None else 1.0,
                          float(worst) if worst is not None else 0.0)
    return Measure(indicator, row["term"], row["source"], bool(row.get("verified", False)),
                   row.get("definition", ""), penalty, requires)


@dataclass(frozen=True)
class EvaluationModel:
    kinds: dict[str, Kind]
    reach_days: int
    verify_limit: TimeLimit
    patrol: dict[str, Any]
    source_note: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationModel:
        kinds = {}
        for key, spec in (data.get("kinds") or {}).items():
            if key not in AGGREGATES:
                raise ValidationError(f"unknown evaluation kind {key!r}", field="kinds",
                                      allowed=list(AGGREGATES))
            penalties = dict(spec.get("penalties") or {})
            measures = tuple(_measure(key, r, penalties) for r in spec.get("indicators", []))
            if len({m.key for m in measures}) != len(measures):
                raise ValidationError(f"evaluation {key}: duplicate indicator key",
                                      field="indicators")
            kinds[key] = Kind(key, spec.get("name_zh", key), spec.get("name_en", key),
                              measures, penalties, tuple(spec.get("levels", ())))
        reach = int(data.get("reach_days", 62))
        if not 1 <= reach <= 3660:
            raise ValidationError("reach_days must be 1…3660", field="reach_days")
        return cls(kinds, reach, TimeLimit.parse(str(data.get("verify_limit", "1wh"))),
                   dict(data.get("patrol") or {}), str(data.get("source_note", "")))

    @classmethod
    def default(cls) -> EvaluationModel:
        path = resources.files("gridcore") / "data" / "evaluation_indicators.json"
        return cls.from_dict(json.loads(path.read_text("utf-8")))

    def kind(self, key: str) -> Kind:
        if key not in self.kinds:
            raise ValidationError(f"unknown evaluation kind {key!r}; kinds are "
                                  f"{', '.join(self.kinds)}", field="kind", value=key,
                                  allowed=list(self.kinds))
        return self.kinds[key]
