"""Scores from aggregates: normalise each indicator, weight it into its index, weight the
indices into the total. Columnar (numpy) so that 20,000 grids score in milliseconds, and every
number of one grid can be explained term by term.

* percentile normalisation: mid-rank percentile among the grids with a defined value
  ``(below + ½·equal) / n``; reversed (1 − p) when higher is worse; **the best value scores
  the full term**: grids tied at the best end (the lowest value when higher is worse, the
  highest when higher is better) get 1, not their mid-rank — of five grids with 0, 0, 0, 5
  and 10 overdue cases the three with none score 1.0, 5 scores 0.3 and 10 scores 0.1 (with
  mid-ranks alone "no overdue case" scored 0.7, and lower still the more grids shared it);
* target normalisation: ``(value − worst) / (target − worst)`` clipped to 0…1;
* an undefined value (no data: 0/0) does not count: the index re-weights its defined terms,
  and an index without any defined term is undefined (None) and left out of the total.

Scores are 0–100, 100 = healthiest. A term's ``contribution`` is its points in its index score;
``contribution_total`` its points in the total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from gridcore.health.model import AGGREGATES, HealthModel, Indicator

# Aggregates that are measurements rather than counts: absent means unknown, not zero.
MEASURES = frozenset({"handling_mean_h", "handling_p90_h", "area_km2"})


def _opt(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


@dataclass(frozen=True)
class Term:
    indicator: str
    name_zh: str
    name_en: str
    index: str
    formula: str
    unit: str
    direction: str
    normalise: str
    value: float | None
    normalised: float | None
    weight: float
    contribution: float
    contribution_total: float
    inputs: dict[str, float | None]
    lost: float = 0.0  # points short of the full term in its index score
    lost_total: float = 0.0  # the same in the total

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class GridScore:
    code: str
    total: float | None
    indices: dict[str, float | None]
    terms: list[Term] = field(default_factory=list)

    def driver(self, index: str = "total") -> Term | None:
        """The term that costs the score most points (its weakest term, 主要失分项): of the
        total, of one index, or the indicator itself; None when nothing was lost."""
        if index == "total":
            terms, key = self.terms, "lost_total"
        else:
            terms = [t for t in self.terms if t.index == index or t.indicator == index]
            key = "lost"
        worst = max(terms, key=lambda t: getattr(t, key), default=None)
        return worst if worst is not None and getattr(worst, key) > 1e-9 else None


def normalise(ind: Indicator, values: np.ndarray) -> np.ndarray:
    out = np.full(values.shape, np.nan)
    defined = ~np.isnan(values)
    if ind.normalise == "target":
        assert ind.target is not None and ind.worst is not None
        out[defined] = np.clip((values[defined] - ind.worst) / (ind.target - ind.worst), 0, 1)
        return out
    x = values[defined]
    if x.size == 0:
        return out
    # mid-rank percentile: (values below + half the ties) / n, from one sort (two binary
    # searches of every value took twice as long at 60,000 grids)
    order = np.argsort(x, kind="stable")
    ranked = x[order]
    first = np.empty(ranked.size, dtype=bool)
    first[0] = True
    np.not_equal(ranked[1:], ranked[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    below, upto = starts[group], np.append(starts[1:], ranked.size)[group]
    pct = np.empty(ranked.size)
    pct[order] = (below + 0.5 * (upto - below)) / ranked.size
    pct = pct if ind.higher_is_better else 1.0 - pct
    best = ranked[-1] if ind.higher_is_better else ranked[0]
    out[defined] = np.where(x == best, 1.0, pct)
    return out


def _weighted(parts: Sequence[tuple[float, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Σ w·x / Σ w over defined x (NaN when none), and the Σ w of the defined ones."""
    num, den = np.zeros(n), np.zeros(n)
    for weight, x in parts:  # whole-array adds of 0 where undefined, not masked scatters
        defined = ~np.isnan(x)
        num += np.where(defined, weight * x, 0.0)
        den += np.where(defined, weight, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan), den


@dataclass
class ScoreTable:
    """Indicator values, normalised values, index scores and the total for many grids."""

    model: HealthModel
    codes: list[str]
    inputs: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    normalised: dict[str, np.ndarray]
    index_scores: dict[str, np.ndarray]
    index_weight_sums: dict[str, np.ndarray]
    total: np.ndarray
    total_weight_sum: np.ndarray
    _positions: dict[str, int] | None = field(default=None, init=False, repr=False)

    def position(self, code: str) -> int:
        if self._positions is None:
            self._positions = {c: i for i, c in enumerate(self.codes)}
        return self._positions[code]

    def column(self, key: str) -> np.ndarray:
        """The total, an index score or an indicator's raw value, by key."""
        if key == "total":
            return self.total
        if key in self.index_scores:
            return self.index_scores[key]
        return self.values[key]

    def explain(self, code: str) -> GridScore:
        i = self.position(code)
        index_w = {x.key: x.weight for x in self.model.indices}
        total_den = self.total_weight_sum[i]
        terms = []
        for ind in self.model.indicators:
            norm = _opt(self.normalised[ind.key][i])
            den = self.index_weight_sums[ind.index][i]
            share = ind.weight / den if norm is not None and den > 0 else 0.0
            points = 100.0 * share * norm if norm is not None else 0.0
            has_index = not np.isnan(self.index_scores[ind.index][i])
            total_share = index_w[ind.index] / total_den if has_index and total_den > 0 else 0
            lost = 100.0 * share * (1.0 - norm) if norm is not None else 0.0
            terms.append(Term(
                indicator=ind.key, name_zh=ind.name_zh, name_en=ind.name_en, index=ind.index,
                formula=ind.formula.text, unit=ind.unit, direction=ind.direction,
                normalise=ind.normalise, value=_opt(self.values[ind.key][i]), normalised=norm,
                weight=ind.weight, contribution=points,
                contribution_total=points * total_share,
                inputs={n: _opt(self.inputs[n][i]) for n in sorted(ind.formula.names)},
                lost=lost, lost_total=lost * total_share))
        return GridScore(code, _opt(self.total[i]),
                         {k: _opt(v[i]) for k, v in self.index_scores.items()}, terms)


def score_grids(model: HealthModel, codes: Sequence[str],
                aggregates: Mapping[str, Sequence[float | None] | np.ndarray]) -> ScoreTable:
    """Score grids (or areas of one level) from their aggregates (name → one value per code).
    A count aggregate that is absent is 0; a measure (handling time) that is absent is
    unknown."""
    n = len(codes)
    inputs: dict[str, np.ndarray] = {}
    for name in model.aggregate_names():
        raw = aggregates.get(name)
        if raw is None:
            inputs[name] = np.full(n, np.nan if name in MEASURES else 0.0)
        else:
            inputs[name] = np.array([np.nan if v is None else v for v in raw], dtype=float) \
                if not isinstance(raw, np.ndarray) else raw.astype(float)
    values = {i.key: i.formula.evaluate_arrays(inputs) * np.ones(n) for i in model.indicators}
    normalised = {i.key: normalise(i, values[i.key]) for i in model.indicators}
    index_scores, index_dens = {}, {}
    for idx in model.indices:
        score, den = _weighted([(i.weight, normalised[i.key]) for i in model.indicators
                                if i.index == idx.key], n)
        index_scores[idx.key], index_dens[idx.key] = 100.0 * score, den
    total, total_den = _weighted([(x.weight, index_scores[x.key]) for x in model.indices], n)
    return ScoreTable(model, list(codes), inputs, values, normalised, index_scores, index_dens,
                      total, total_den)


__all__ = ["AGGREGATES", "GridScore", "ScoreTable", "Term", "normalise", "score_grids"]
