"""Learning from the stored history (what ``gridcore learn`` runs): train, score against the
baselines on a held-out time split, then train the served model on the whole history.

Pure: the storage side gives one DataFrame row per case (columns below) and stores what comes
back. Every figure printed or stored is measured on cases later than everything the scored
model saw (a time split, never a shuffle): that is how the model will be used.

History columns: ``id``, ``text`` (first line = title), ``category`` (class key), ``at``
(opened, UTC), ``department`` (final), ``subtype`` (the legacy system's own class word, when
imported), ``grid``, ``community``, ``street``, ``district``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from gridcore.intelligence.baselines import (
    KeywordClassifier,
    MajorityClassifier,
    PlainTfidfClassifier,
)
from gridcore.intelligence.classify import TextClassifier
from gridcore.intelligence.dispatch import DispatchCase, DispatchModel, SendBack
from gridcore.intelligence.errors import NotEnoughHistory
from gridcore.intelligence.evaluation import (
    Scores,
    coverage_curve,
    scores,
    threshold_for_accuracy,
    time_split,
)
from gridcore.intelligence.features import Report
from gridcore.intelligence.memory import Place

OURS = "model"
# A report is never filed on a class the model gives less than half its belief, however well
# the held-out reports fared (a small, clean history would otherwise allow any threshold)
MIN_FILING_CONFIDENCE = 0.5
MIN_CASES = 50  # below this a held-out tenth is a handful of cases: nothing to measure


@dataclass
class Trained:
    """A model trained on the whole history, with its held-out scores and the baselines'."""

    kind: str
    model: object
    scores: dict[str, dict[str, float]]  # candidate → metric → value, on the same split
    metric: str  # the metric that decides activation
    split: str
    threshold: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    data_from: datetime | None = None
    data_to: datetime | None = None
    n_cases: int = 0
    notes: list[str] = field(default_factory=list)
    test_from: datetime | None = None  # the first case of the held-out part
    outputs: Any = None  # what the model made for storage (the forecast rows)
    # the model of the split (trained on the earlier part) and the later part's rows, so the
    # active model can be scored on the same cases (``score_active``)
    held_out: Callable[[object], float] | None = field(default=None, repr=False)

    @property
    def score(self) -> float:
        return self.scores[OURS][self.metric]

    def metrics(self) -> dict[str, Any]:
        return {"split": self.split, "metric": self.metric, "scores": self.scores,
                "notes": self.notes}

    def table(self) -> list[str]:
        """The scores as printed by ``gridcore learn``: the model first, then each baseline
        with the model's gain over it."""
        names = sorted(self.scores[OURS])
        lines = [f"  {self.split}", "  " + f"{'':32s}" + "".join(f"{n:>12s}" for n in names)]
        for cand, s in self.scores.items():
            diff = _gain(self.metric, self.score, s[self.metric])
            gain = "" if cand == OURS else f"   (model {diff:+.3f} {self.metric})"
            lines.append(f"  {cand:32s}" + "".join(f"{s[n]:12.3f}" for n in names) + gain)
        return lines


def _gain(metric: str, ours: float, other: float) -> float:
    return other - ours if metric == "deviance" else ours - other


def better_or_equal(metric: str, candidate: float, active: float) -> bool:
    """A model never replaces a better one: lower deviance, higher accuracy / F1."""
    return candidate <= active if metric == "deviance" else candidate >= active


def reports(history: pd.DataFrame) -> list[Report]:
    out = []
    for t in history["text"].fillna("").astype(str):
        title, _, body = t.partition("\n")
        out.append(Report(title, body))
    return out


# --------------------------------------------------------------------- 智能分类 classification
def train_classifier(history: pd.DataFrame, class_terms: Mapping[str, Sequence[str]], *,
                     test_fraction: float = 0.2, target_accuracy: float = 0.95) -> Trained:
    """The classifier of report text → class, next to the majority class, keyword matching on
    the taxonomy's names and the plain TF-IDF + LR of issue 22. The filing threshold is the
    lowest confidence at which ``target_accuracy`` of the held-out reports were right."""
    h = history[history["text"].fillna("").str.strip() != ""].sort_values("at", kind="stable")
    h = h.drop_duplicates("text", keep="first")  # a repeated text would leak across the split
    if len(h) < MIN_CASES or h["category"].nunique() < 2:
        raise NotEnoughHistory(f"classification needs ≥ {MIN_CASES} described cases of ≥ 2 "
                               f"classes; the history has {len(h)} of "
                               f"{h['category'].nunique()}")
    x, y = reports(h), h["category"].astype(str).tolist()
    split = time_split(h["at"].to_numpy(), test_fraction)
    tr_x, tr_y = [x[i] for i in split.train], [y[i] for i in split.train]
    te_x, te_y = [x[i] for i in split.test], [y[i] for i in split.test]
    recipes: dict[str, Callable[[], Any]] = {
        OURS: lambda: TextClassifier(class_terms=class_terms),
        "majority class": MajorityClassifier,
        "keywords (taxonomy names)": lambda: KeywordClassifier(class_terms),
        "plain TF-IDF + LR": PlainTfidfClassifier}
    results: dict[str, Scores] = {}
    held: Any = None
    proba: NDArray[np.float64] | None = None
    for name, make in recipes.items():
        model = make().fit(tr_x, tr_y)
        p = model.predict_proba(te_x)
        results[name] = scores(te_y, p, model.classes)
        if name == OURS:
            held, proba = model, p
    assert proba is not None
    curve = coverage_curve(te_y, proba, held.classes)
    point = threshold_for_accuracy([p for p in curve if p.threshold >= MIN_FILING_CONFIDENCE],
                                   target_accuracy)
    notes = [f"filing threshold {point.threshold:.2f}: {point.coverage:.0%} of held-out "
             f"reports filed automatically, {point.accuracy:.1%} of them right (never below "
             f"{MIN_FILING_CONFIDENCE:.2f})"] if point else [
        f"no confidence reaches {target_accuracy:.0%} held-out accuracy: reports without a "
        "class are never filed automatically (suggestions only)"]
    unseen = sorted(set(te_y) - set(tr_y))
    if unseen:
        notes.append(f"{len(unseen)} classes appear only in the later part (counted wrong): "
                     f"{', '.join(unseen[:5])}")

    def score_other(active: object) -> float:
        assert isinstance(active, TextClassifier)  # trained earlier, scored on the same reports
        return scores(te_y, active.predict_proba(te_x), active.classes).macro_f1

    final = TextClassifier(class_terms=class_terms).fit(x, y)
    return Trained("classify", final, {k: _plain(v) for k, v in results.items()}, "macro_f1",
                   split.description, point.threshold if point else None,
                   {"target_accuracy": target_accuracy, "classes": final.classes},
                   _when(h["at"].min()), _when(h["at"].max()), len(h), notes,
                   _when(h["at"].iloc[split.test].min()), held_out=score_other)


def _plain(s: Scores) -> dict[str, float]:
    return {"accuracy": s.accuracy, "macro_f1": s.macro_f1, "top3": s.top3}


def _when(t: Any) -> datetime | None:
    return None if pd.isna(t) else pd.Timestamp(t).to_pydatetime()


# ---------------------------------------------------------------------- 智能派遣 dispatch
def dispatch_case(row: Mapping[str, Any]) -> DispatchCase:
    """A stored case as the dispatch model sees it: class path (major, class, the legacy
    system's own class word), text, place, time, final department."""
    cat = str(row.get("category") or "")
    sub = row.get("subtype")
    path = tuple(p for p in (cat[:3], cat, str(sub) if isinstance(sub, str) and sub else None)
                 if p)

    def code(name: str) -> str | None:
        v = row.get(name)
        return str(v) if isinstance(v, str) and v else None

    dept = row.get("department")
    return DispatchCase(path, str(row.get("text") or ""),
                        Place(code("grid"), code("community"), code("street"), code("district")),
                        pd.Timestamp(row["at"]).to_pydatetime(),
                        str(dept) if isinstance(dept, str) and dept else None)


def train_dispatch(history: pd.DataFrame, sendbacks: Sequence[SendBack] = (), *,
                   test_fraction: float = 0.2,
                   departments: Mapping[str, str] | None = None) -> Trained:
    """The learned dispatch model, walked forward through the later part with its case memory
    fed day by day (as in service), next to a lookup of the most frequent department per class
    and community (what rules learnt as a table give) and the plain TF-IDF + LR.
    ``departments`` (code → name, the department table) lets a department without history
    complete the top 3 by its name, where that helped on the training part."""
    h = history[history["department"].fillna("") != ""].sort_values("at", kind="stable")
    if len(h) < MIN_CASES or h["department"].nunique() < 2:
        raise NotEnoughHistory(f"dispatch needs ≥ {MIN_CASES} dispatched cases of ≥ 2 "
                               f"departments; the history has {len(h)}")
    cases = [dispatch_case(r) for r in h.to_dict("records")]
    split = time_split([c.at for c in cases], test_fraction)
    train = [cases[i] for i in split.train]
    test = [cases[i] for i in split.test]
    truth = [str(c.department) for c in test]
    cut = test[0].at
    model = DispatchModel(directory=departments).fit(train, [s for s in sendbacks if s.at < cut])
    a = model.memory_weight if model.memory_weight is not None else 0.5
    live = [(1 - a) * t + a * m for t, m in model.walk_forward(test, [
        s for s in sendbacks if s.at >= cut])]
    results = {OURS: _ranked_scores(truth, [model.rank(c, p) for c, p in zip(
        test, live, strict=True)])}
    plain = PlainTfidfClassifier().fit(
        [Report(" | ".join((*c.path, c.text, c.place.community or ""))) for c in train],
        [str(c.department) for c in train])
    results["plain TF-IDF + LR"] = _tops_scores(truth, plain.predict_proba(
        [Report(" | ".join((*c.path, c.text, c.place.community or ""))) for c in test]),
        plain.classes)
    results["lookup table (class, community)"] = _lookup_scores(train, test, truth)

    def score_other(active: object) -> float:
        m = copy.deepcopy(active)  # a DispatchModel trained earlier, walked the same way
        assert isinstance(m, DispatchModel)
        w = m.memory_weight if m.memory_weight is not None else 0.5
        p = [(1 - w) * t + w * mm for t, mm in m.walk_forward(test)]
        return _tops_scores(truth, np.array(p), m.classes)["accuracy"]

    named = model.name_threshold
    final = DispatchModel(memory_weight=a, directory=departments, name_threshold=named).fit(
        cases, sendbacks)
    return Trained("dispatch", final, results, "accuracy",
                   split.description + " (memory fed day by day through the test part)", None,
                   {"memory_weight": a, "sendbacks": len(sendbacks), "name_threshold": named},
                   cases[0].at, cases[-1].at, len(cases),
                   [f"blend weight of the case memory {a} (chosen on the training part)",
                    "top 3 completed by department name from similarity "
                    f"{named} (chosen on the training part)" if named is not None else
                    "top 3 not completed by department names (it did not help on the "
                    "training part)"],
                   cut, held_out=score_other)


def _tops_scores(truth: Sequence[str], proba: NDArray[np.float64],
                 classes: Sequence[str]) -> dict[str, float]:
    s = scores(truth, proba, classes)
    return {"accuracy": s.accuracy, "top3": s.top3}


def _ranked_scores(truth: Sequence[str], ranked: Sequence[Sequence[str]]
                   ) -> dict[str, float]:
    return {"accuracy": float(np.mean([r[:1] == [y] for r, y in zip(ranked, truth,
                                                                     strict=True)])),
            "top3": float(np.mean([y in r[:3] for r, y in zip(ranked, truth, strict=True)]))}


def _lookup_scores(train: Sequence[DispatchCase], test: Sequence[DispatchCase],
                   truth: Sequence[str]) -> dict[str, float]:
    # the most specific class word (the legacy system's own type when imported): the table a
    # city would write from its history, as bench_dispatch's rule learner does
    frame = pd.DataFrame({"cls": [c.path[-1] for c in train],
                          "where": [c.place.community or "" for c in train],
                          "dept": [c.department for c in train]})

    def ranked(keys: list[str]) -> dict[Any, list[str]]:
        counts = frame.groupby([*keys, "dept"]).size().reset_index(name="n")
        counts = counts.sort_values([*keys, "n"], ascending=[True] * len(keys) + [False])
        return {k: g["dept"].tolist()[:3] for k, g in counts.groupby(
            keys[0] if len(keys) == 1 else keys)}

    local, by_cls = ranked(["cls", "where"]), ranked(["cls"])
    overall = frame["dept"].value_counts().index[:3].tolist()
    tops = []
    for c in test:
        cls = c.path[-1]
        tops.append(local.get((cls, c.place.community or "")) or by_cls.get(cls) or overall)
    acc = float(np.mean([t[:1] == [y] for t, y in zip(tops, truth, strict=True)]))
    top3 = float(np.mean([y in t[:3] for t, y in zip(tops, truth, strict=True)]))
    return {"accuracy": acc, "top3": top3}


def activation(trained: Trained, active: object | None, active_data_to: datetime | None,
               active_metrics: Mapping[str, Any] | None,
               tolerance: float = 0.02) -> tuple[bool, str]:
    """May ``trained`` replace the active model? Never when it is worse.

    When the active model was trained before the new split's held-out part began, both are
    scored on exactly those later cases. Otherwise the active model saw some of them (its score
    there would flatter it): the two held-out scores, each on its own split, are compared with
    ``tolerance`` for the difference between the windows — and the answer says so."""
    m = trained.metric
    if active is None:
        return True, "no active model of this kind"
    if (trained.held_out is not None and active_data_to is not None
            and trained.test_from is not None and active_data_to < trained.test_from):
        theirs = trained.held_out(active)
        ok = better_or_equal(m, trained.score, theirs)
        return ok, (f"on the same held-out cases: new {trained.score:.3f}, active {theirs:.3f} "
                    f"{m}")
    stored = (active_metrics or {}).get("scores", {}).get(OURS, {}).get(m)
    if stored is None:
        return True, "the active model has no stored score to compare with"
    slack = tolerance if m != "deviance" else -tolerance
    ok = better_or_equal(m, trained.score, float(stored) - slack)
    return ok, (f"the active model saw part of this held-out window: each on its own split, new "
                f"{trained.score:.3f}, active {float(stored):.3f} {m} (tolerance {tolerance})")
