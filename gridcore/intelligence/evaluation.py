"""Held-out evaluation shared by every model: splits, scores, and the activation check.

``compare`` is what ``gridcore learn --evaluate`` calls: every candidate *recipe* (a factory that
builds an untrained model) is trained on the same training part and scored on the same test
part, so "a model never activates if it is worse than the active one" compares like with like.
An already trained active model must not be scored as it is: it may have seen the test cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import f1_score

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Split:
    """Row positions of the training and test parts, with how they were chosen."""

    train: NDArray[np.intp]
    test: NDArray[np.intp]
    description: str


def time_split(times: Sequence[Any] | NDArray[Any], test_fraction: float = 0.2) -> Split:
    """Train on the earlier cases, test on the last ``test_fraction`` (no look-ahead).

    Ties keep their input order (a stable sort), so the split is reproducible."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be between 0 and 1")
    order = np.argsort(np.asarray(times), kind="stable").astype(np.intp)
    cut = int(round(len(order) * (1.0 - test_fraction)))
    return Split(order[:cut], order[cut:],
                 f"time split: first {cut} cases train, last {len(order) - cut} test")


@dataclass(frozen=True, slots=True)
class Scores:
    """Held-out classification scores (accuracy, macro-F1, top-3)."""

    accuracy: float
    macro_f1: float
    top3: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "top3": self.top3,
                "n": float(self.n)}


def scores(truth: Sequence[str], proba: NDArray[np.float64], classes: Sequence[str]) -> Scores:
    """Scores of class probabilities against the true labels.

    A true label the model never saw counts as wrong (it is not dropped)."""
    cls = np.asarray(classes, dtype=object)
    y = np.asarray(truth, dtype=object)
    order = np.argsort(-proba, axis=1)
    pred = cls[order[:, 0]]
    top = cls[order[:, : min(3, len(cls))]]
    return Scores(float(np.mean(pred == y)),
                  float(f1_score(y.astype(str), pred.astype(str), average="macro",
                                 zero_division=0)),
                  float(np.mean((top == y[:, None]).any(axis=1))), len(y))


@dataclass(frozen=True, slots=True)
class CoveragePoint:
    """At confidence ≥ threshold: the share of reports decided and their accuracy."""

    threshold: float
    coverage: float
    accuracy: float


def coverage_curve(truth: Sequence[str], proba: NDArray[np.float64], classes: Sequence[str],
                   thresholds: Sequence[float] | None = None) -> list[CoveragePoint]:
    """Accuracy/coverage trade-off of "file when the top probability ≥ threshold"."""
    cls = np.asarray(classes, dtype=object)
    y = np.asarray(truth, dtype=object)
    conf = proba.max(axis=1)
    right = cls[proba.argmax(axis=1)] == y
    points = []
    for t in thresholds if thresholds is not None else np.round(np.arange(0, 1.0, 0.05), 2):
        kept = conf >= t
        points.append(CoveragePoint(float(t), float(kept.mean()),
                                    float(right[kept].mean()) if kept.any() else float("nan")))
    return points


def threshold_for_accuracy(curve: Sequence[CoveragePoint], target: float) -> CoveragePoint | None:
    """The lowest threshold whose decided reports reach ``target`` accuracy (most coverage)."""
    ok = [p for p in curve if p.coverage > 0 and p.accuracy >= target]
    return min(ok, key=lambda p: p.threshold) if ok else None


class ProbabilisticModel(Protocol[T]):  # type: ignore[misc]
    """What ``compare`` needs: fit on inputs and labels, then class probabilities."""

    @property
    def classes(self) -> list[str]: ...

    def fit(self, inputs: Sequence[T], labels: Sequence[str]) -> Any: ...

    def predict_proba(self, inputs: Sequence[T]) -> NDArray[np.float64]: ...


@dataclass(frozen=True, slots=True)
class Comparison:
    """Scores of each candidate on one split, best first by ``metric``."""

    split: str
    metric: str
    results: dict[str, Scores] = field(default_factory=dict)

    def ranking(self) -> list[str]:
        return sorted(self.results, key=lambda n: -getattr(self.results[n], self.metric))

    def best(self) -> str:
        return self.ranking()[0]

    def may_activate(self, candidate: str, active: str, tolerance: float = 0.0) -> bool:
        """True when ``candidate`` is not worse than ``active`` on the metric (minus tolerance)."""
        return bool(getattr(self.results[candidate], self.metric)
                    >= getattr(self.results[active], self.metric) - tolerance)


def compare(candidates: Mapping[str, Callable[[], ProbabilisticModel[T]]],
            inputs: Sequence[T], labels: Sequence[str], split: Split,
            metric: str = "macro_f1") -> Comparison:
    """Train each recipe on ``split.train`` and score it on ``split.test``."""
    if metric not in ("accuracy", "macro_f1", "top3"):
        raise ValueError(f"unknown metric {metric!r}")
    train_x = [inputs[i] for i in split.train]
    train_y = [labels[i] for i in split.train]
    test_x = [inputs[i] for i in split.test]
    test_y = [labels[i] for i in split.test]
    results = {}
    for name, make in candidates.items():
        model = make()
        model.fit(train_x, train_y)
        results[name] = scores(test_y, model.predict_proba(test_x), model.classes)
    return Comparison(split.description, metric, results)
