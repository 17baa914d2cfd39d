"""Learned dispatch (智能派遣): (class, text, place, time) → department, next to the rules.

Two learners, blended:
- a text model: TF-IDF over the class path, the text, the place names and the channel, with a
  logistic regression whose training cases weigh less as they age (half-life ``text_half_life``);
- the case memory (``gridcore.intelligence.memory``): time-decayed department counts per class
  and place, updated case by case and by send-backs; it also gives the explanation ("similar
  cases in this community went to X: 37 of 41").
The blend weight is chosen at training time on the last fifth of the history (walking forward
through it as the live system would), never on the cases it is later measured on.

Cold start: with the city's department table (``directory``: code → name), a department whose
name matches the class words completes the top 3 when the model's own third choice is weak (a
new queue has no history to learn from; ``gridcore.intelligence.directory``). Whether it does,
and from which similarity on, is chosen on the same last fifth; never when it did not help there.

The dispatch rules (权责清单) stay the law: ``combine`` lets a rule that names a department for the
class and area win, and the model proposes only where no rule applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from gridcore.intelligence.directory import DepartmentDirectory
from gridcore.intelligence.errors import NotEnoughHistory, NotFitted
from gridcore.intelligence.features import detect_language
from gridcore.intelligence.memory import CaseMemory, Evidence, Place

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression


@dataclass(frozen=True, slots=True)
class DispatchCase:
    """A case to dispatch. ``path`` is its class from general to specific (major, minor…);
    ``department`` is where it finally went (None for a new case)."""

    path: tuple[str, ...]
    text: str
    place: Place
    at: datetime
    department: str | None = None
    channel: str | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class SendBack:
    """退单: ``department`` sent back a case of class ``path`` at ``place``."""

    path: tuple[str, ...]
    place: Place
    department: str
    at: datetime
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class DepartmentScore:
    department: str
    probability: float
    evidence: Evidence | None = None
    note: str | None = None  # why it is proposed when neither learner ranked it (cold start)

    def reason(self) -> str:
        if self.note:
            return self.note
        e = self.evidence
        if e is None:
            return f"text model: {self.probability:.0%}"
        where = "this class city-wide" if e.level == "class" else (
            "the broader class city-wide" if e.level.startswith("class") else f"this {e.level}")
        back = f"; sent back {e.refusals}×" if e.refusals else ""
        return (f"similar cases in {where} went to {e.department}: {e.cases_there} of "
                f"{e.cases_total}{back}")


@dataclass(frozen=True, slots=True)
class DispatchPrediction:
    candidates: tuple[DepartmentScore, ...]

    @property
    def department(self) -> str | None:
        return self.candidates[0].department if self.candidates else None

    @property
    def confidence(self) -> float:
        return self.candidates[0].probability if self.candidates else 0.0


class RuleAnswer(Protocol):
    """What the rule engine answers (``gridcore.dispatch.Proposal`` has these fields)."""

    @property
    def department_code(self) -> str | None: ...

    @property
    def reason(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DispatchDecision:
    department: str | None
    source: str  # "rule" | "model" | "none"
    confidence: float | None
    reason: str
    suggestions: tuple[DepartmentScore, ...] = field(default=())


def combine(rule: RuleAnswer | None, prediction: DispatchPrediction | None,
            threshold: float = 0.0) -> DispatchDecision:
    """The rule wins when it names a department (权责清单); else the model proposes when its
    confidence reaches ``threshold``; else a dispatcher chooses among the suggestions."""
    sugg = prediction.candidates[:3] if prediction is not None else ()
    if rule is not None and rule.department_code:
        note = ""
        if prediction is not None and prediction.department not in (None,
                                                                      rule.department_code):
            note = (f" (the model would propose {prediction.department} at "
                    f"{prediction.confidence:.0%})")
        return DispatchDecision(rule.department_code, "rule", None, rule.reason + note, sugg)
    if prediction is not None and prediction.department and \
            prediction.confidence >= threshold:
        top = prediction.candidates[0]
        return DispatchDecision(top.department, "model", top.probability,
                                f"proposed by the model ({top.probability:.0%}): "
                                f"{top.reason()}", sugg)
    why = rule.reason if rule is not None else "no dispatch rule applies"
    return DispatchDecision(None, "none", prediction.confidence if prediction else None,
                            f"{why}; the model is not confident enough: a dispatcher must "
                            "choose", sugg)


def _doc(case: DispatchCase) -> str:
    # Measured on SF 311: the channel and the district as tokens made the text model worse
    # (NOTES.md); the community name as plain words helps.
    return " | ".join(b for b in (*case.path, case.text, case.place.community or "") if b)


class DispatchModel:
    """Learned dispatch: text model + case memory, blended (智能派遣)."""

    def __init__(self, *, C: float = 10.0, text_half_life: float | None = 365.0,
                 memory_half_life: float = 90.0, memory_weight: float | None = None,
                 blend_grid: Sequence[float] = (0.2, 0.35, 0.5, 0.65, 0.8),
                 directory: Mapping[str, str] | None = None,
                 name_threshold: float | None = None, weak: float = 0.1,
                 name_grid: Sequence[float] = (0.3, 0.4, 0.5, 0.6)) -> None:
        self.C = C
        self.text_half_life = text_half_life
        self.memory_half_life = memory_half_life
        self.memory_weight = memory_weight  # None: chosen on the last fifth of the history
        self.blend_grid = tuple(blend_grid)
        self.directory = DepartmentDirectory(directory) if directory else None
        # from which name similarity a department without a rank of its own takes the third
        # place (when the model's third choice is below ``weak``); None: never. Chosen in ``fit``
        # with the blend weight unless both are given.
        self.name_threshold = name_threshold
        self.weak = weak
        self.name_grid = tuple(name_grid)
        self.memory = CaseMemory(memory_half_life)
        self._vec: TfidfVectorizer | None = None
        self._lr: LogisticRegression | None = None
        self._lr_index: NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self.trained_until: datetime | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.memory.departments)

    def _fit_text(self, cases: Sequence[DispatchCase]) -> None:
        # imported here, not with the module: see features.BackgroundSpace.fit
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        docs = [_doc(c) for c in cases]
        zh = detect_language(docs[:2000]) == "zh"
        self._vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2)) if zh \
            else TfidfVectorizer()
        x = self._vec.fit_transform(docs)
        end = max(c.at for c in cases)
        w = np.array([c.weight for c in cases], dtype=float)
        if self.text_half_life:
            age = np.array([(end - c.at).total_seconds() / 86400.0 for c in cases])
            w = w * 0.5 ** (age / self.text_half_life)
        y = [c.department for c in cases]
        # newton-cg reaches the same optimum as lbfgs (the loss is convex) in a few Newton
        # steps instead of many quasi-Newton ones: with ~100 departments it is about 3× faster
        # (benchmarks/README.md, intel4b), which matters because `serve` retrains weekly.
        self._lr = LogisticRegression(C=self.C, max_iter=3000, solver="newton-cg")
        # Raw decayed weights (not renormalised to mean 1): old cases also regularise less,
        # which measured better than renormalising.
        self._lr.fit(x, y, sample_weight=w)

    def _sync_index(self) -> None:
        if self._lr is not None:
            self._lr_index = np.array([self.memory._dept(str(c)) for c in self._lr.classes_],
                                      dtype=np.intp)

    def fit(self, cases: Sequence[DispatchCase],
            sendbacks: Sequence[SendBack] = ()) -> DispatchModel:
        labelled = sorted((c for c in cases if c.department), key=lambda c: c.at)
        if len({c.department for c in labelled}) < 2:
            raise NotEnoughHistory("dispatch needs cases sent to at least two departments")
        if self.memory_weight is None:
            self.memory_weight, chosen = self._choose_weight(labelled, sendbacks)
            if self.name_threshold is None:
                self.name_threshold = chosen
        self.memory = CaseMemory(self.memory_half_life)
        self._fit_text(labelled)
        for c in labelled:
            self.observe(c)
        for s in sendbacks:
            self.observe_sendback(s)
        self._sync_index()
        self.trained_until = labelled[-1].at
        return self

    def _choose_weight(self, cases: Sequence[DispatchCase], sendbacks: Sequence[SendBack]
                       ) -> tuple[float, float | None]:
        """Blend weight (best accuracy) and name threshold (best top 3; None unless it beats
        no completion) on the last fifth of the history, walked forward."""
        cut = int(len(cases) * 0.8)
        if cut < 50 or len(cases) - cut < 20:
            return 0.5, None
        probe = DispatchModel(C=self.C, text_half_life=self.text_half_life,
                              memory_half_life=self.memory_half_life, memory_weight=0.5)
        probe.fit(cases[:cut], [s for s in sendbacks if s.at < cases[cut].at])
        parts = probe.walk_forward(cases[cut:], sendbacks)
        truth = [probe.memory._index.get(str(c.department), -1) for c in cases[cut:]]
        best, best_acc = 0.5, -1.0
        for a in self.blend_grid:
            acc = float(np.mean([int(np.argmax((1 - a) * t + a * m)) == y
                                 for (t, m), y in zip(parts, truth, strict=True)]))
            if acc > best_acc:
                best, best_acc = a, acc
        if self.directory is None:
            return best, None
        probe.directory, probe.weak = self.directory, self.weak
        blended = [(1 - best) * t + best * m for t, m in parts]
        names = [str(c.department) for c in cases[cut:]]

        def top3(threshold: float | None) -> float:
            probe.name_threshold = threshold
            return float(np.mean([y in probe.rank(c, p) for c, p, y in zip(
                cases[cut:], blended, names, strict=True)]))
        base = top3(None)
        top, threshold = max((top3(t), t) for t in self.name_grid)  # ties: the stricter
        return best, (threshold if top > base else None)

    def observe(self, case: DispatchCase) -> None:
        """Learn from a dispatched case right away (the case memory; no retraining)."""
        if case.department:
            self.memory.add(case.path, case.place, case.department, case.at, case.weight)

    def observe_sendback(self, sendback: SendBack) -> None:
        """Learn from a send-back (退单): that department loses weight for that class there."""
        self.memory.refuse(sendback.path, sendback.place, sendback.department, sendback.at,
                           sendback.weight)

    def _parts(self, case: DispatchCase) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self._vec is None or self._lr is None:
            raise NotFitted("the dispatch model is not trained")
        self._sync_index()
        n = len(self.memory.departments)
        text = np.zeros(n)
        text[self._lr_index] = self._lr.predict_proba(self._vec.transform([_doc(case)]))[0]
        # send-backs also weigh on the text model's opinion (none remembered: nothing to do)
        for d in self._lr_index if self.memory.refusals else ():
            r = self.memory.refused_weight(case.path, case.place, self.memory.departments[d],
                                           case.at)
            if r:
                text[d] /= 1.0 + r
        if text.sum() > 0:
            text /= text.sum()
        return text, self.memory.proba(case.path, case.place, case.at)

    def proba(self, case: DispatchCase, exclude: Sequence[str] = ()) -> NDArray[np.float64]:
        """Blended probabilities over ``self.classes``; ``exclude`` (who sent it back) → 0."""
        text, mem = self._parts(case)
        a = 0.5 if self.memory_weight is None else self.memory_weight
        p = (1 - a) * text + a * mem
        for name in exclude:
            if name in self.memory._index:
                p[self.memory._index[name]] = 0.0
        return p / p.sum() if p.sum() > 0 else p

    def _named(self, case: DispatchCase, ranked: Sequence[str], third: float,
               exclude: Sequence[str] = ()) -> tuple[str, float] | None:
        """The department named like the class that takes the third place, if any."""
        # getattr: a model stored before the directory existed has none of these attributes
        directory = getattr(self, "directory", None)
        threshold = getattr(self, "name_threshold", None)
        if directory is None or threshold is None or len(ranked) < 2 or third >= self.weak:
            return None
        hit = directory.match(case.path, exclude=[*ranked[:2], *exclude])
        return hit if hit is not None and hit[1] >= threshold else None

    def rank(self, case: DispatchCase, p: NDArray[np.float64], k: int = 3) -> list[str]:
        """The top ``k`` departments of probabilities ``p`` (over ``self.classes``, as
        ``proba`` or ``walk_forward`` give them), the third completed by name when weak."""
        deps = self.memory.departments
        order = [int(d) for d in np.argsort(-p)[:k]]
        ranked = [deps[d] for d in order]
        if k >= 3 and len(order) >= 3:
            hit = self._named(case, ranked, float(p[order[2]]))
            if hit is not None:
                ranked[2] = hit[0]
        return ranked

    def predict(self, case: DispatchCase, k: int = 3,
                exclude: Sequence[str] = ()) -> DispatchPrediction:
        p = self.proba(case, exclude)
        out = []
        for d in np.argsort(-p)[:k]:
            if p[d] <= 0:
                break
            name = self.memory.departments[d]
            out.append(DepartmentScore(name, float(p[d]),
                                       self.memory.evidence(case.path, case.place, name)))
        if k >= 3 and len(out) >= 3:
            hit = self._named(case, [c.department for c in out], out[2].probability, exclude)
            if hit is not None:
                known = self.memory._index.get(hit[0])
                out[2] = DepartmentScore(
                    hit[0], float(p[known]) if known is not None else 0.0, None,
                    f"its name matches the class words ({hit[1]:.0%}); the model's own third "
                    f"choice was weak ({out[2].probability:.0%})")
        return DispatchPrediction(tuple(out))

    def walk_forward(self, cases: Sequence[DispatchCase], sendbacks: Sequence[SendBack] = (),
                     ) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
        """(text, memory) probabilities of each case in time order, the memory knowing every
        case and send-back of the days before (what the live system knows). Mutates the memory;
        the class space may grow, so earlier rows are padded to the final size."""
        ordered = sorted(range(len(cases)), key=lambda i: cases[i].at)
        backs = sorted(sendbacks, key=lambda s: s.at)
        pending: list[DispatchCase] = []
        out: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
        day = None
        b = 0
        for i in ordered:
            c = cases[i]
            if c.at.date() != day:
                for p in pending:
                    self.observe(p)
                pending = []
                day = c.at.date()
                while b < len(backs) and backs[b].at.date() < day:
                    self.observe_sendback(backs[b])
                    b += 1
            out[i] = self._parts(c)
            pending.append(c)
        for p in pending:
            self.observe(p)
        n = len(self.memory.departments)
        return [tuple(np.pad(v, (0, n - len(v))) for v in out[i])  # type: ignore[misc]
                for i in range(len(cases))]
