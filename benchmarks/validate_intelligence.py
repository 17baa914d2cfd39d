"""Choose model levers on validation slices INSIDE the training period (never on the test).

    python benchmarks/validate_intelligence.py --data /work/shared/data [--only en,dispatch]
        [--test NAME]

The protocol of benchmarks/README.md "intel7": the time split of bench_intelligence (last 20 %
test) is kept, and each lever is scored only on windows of the *training* part.

- en: SeeClickFix (repeated texts dropped, sorted by real time). Three windows — the third,
  fourth and fifth fifth of the training part — each scored by a model trained on every report
  before it; macro-F1 per window and their mean. One window of ~700 reports with 27 classes (8
  with ≤ 2 reports) moves by ±0.03 on one or two rare hits, hence three.
  ``--test NAME`` scores that one candidate (and both baselines) on the test part as well: run
  it once, for the validation's pick.
- dispatch: SF 311, the training part's last fifth (794 cases) after a model fitted on the
  3,172 before it, blend 0.35 / name threshold 0.6 (as the training part chose them): memory fed
  daily (live), and retrained weekly as `serve` learns. The test part is never touched.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC
from sklearn.utils.class_weight import compute_class_weight

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_intelligence as bench  # noqa: E402

from gridcore.intelligence.baselines import PlainTfidfClassifier  # noqa: E402
from gridcore.intelligence.classify import TextClassifier  # noqa: E402
from gridcore.intelligence.dispatch import DispatchCase, DispatchModel  # noqa: E402
from gridcore.intelligence.evaluation import scores  # noqa: E402
from gridcore.intelligence.features import Report  # noqa: E402

warnings.filterwarnings("ignore")


# ------------------------------------------------------------------ English candidates
def _views(texts: Sequence[str]) -> list[TfidfVectorizer]:
    """The two views of ``TextClassifier`` for English: words and char_wb 2–5."""
    return [TfidfVectorizer(sublinear_tf=True).fit(texts),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                            sublinear_tf=True).fit(texts)]


class Knn:
    """Balanced k nearest neighbours (cosine on the two views; a vote weighs 1 / class size)."""

    def __init__(self, k: int = 10) -> None:
        self.k = k
        self.classes: list[str] = []

    def _x(self, texts: Sequence[str]) -> sparse.csr_matrix:
        x = sparse.hstack([v.transform(texts) for v in self._vecs], format="csr")
        norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel()) + 1e-9
        return sparse.csr_matrix(sparse.diags(1.0 / norm) @ x)

    def fit(self, reports: Sequence[Report], labels: Sequence[str]) -> Knn:
        texts = [r.text() for r in reports]
        self._vecs = _views(texts)
        self._train = self._x(texts)
        self._y = np.asarray(labels, dtype=object)
        self.classes = sorted(set(labels))
        size = {c: int((self._y == c).sum()) for c in self.classes}
        self._vote = np.array([1.0 / size[c] for c in self._y])
        self._col = np.array([self.classes.index(c) for c in self._y])
        return self

    def predict_proba(self, reports: Sequence[Report]) -> np.ndarray:
        sim = (self._x([r.text() for r in reports]) @ self._train.T).toarray()
        out = np.full((len(reports), len(self.classes)), 1e-6)
        for i, row in enumerate(np.argsort(-sim, axis=1)[:, : self.k]):
            np.add.at(out[i], self._col[row], sim[i, row] * self._vote[row])
        return np.asarray(out / out.sum(axis=1, keepdims=True))


class SoftSvm:
    """Linear SVM (balanced), softmax of its margins (calibration by CV needs ≥ 3 per class)."""

    def __init__(self, C: float = 0.5, temperature: float = 0.1) -> None:
        self.C, self.temperature = C, temperature
        self.classes: list[str] = []

    def fit(self, reports: Sequence[Report], labels: Sequence[str]) -> SoftSvm:
        texts = [r.text() for r in reports]
        self._vecs = _views(texts)
        cls = np.unique(np.asarray(labels))
        weights = compute_class_weight("balanced", classes=cls, y=np.asarray(labels))
        self._svm = LinearSVC(C=self.C, class_weight=dict(zip(cls, weights, strict=True)))
        self._svm.fit(self._x(texts), list(labels))
        self.classes = [str(c) for c in self._svm.classes_]
        return self

    def _x(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([v.transform(texts) for v in self._vecs], format="csr")

    def predict_proba(self, reports: Sequence[Report]) -> np.ndarray:
        z = self._svm.decision_function(self._x([r.text() for r in reports]))
        z = np.exp((z - z.max(axis=1, keepdims=True)) / self.temperature)
        return np.asarray(z / z.sum(axis=1, keepdims=True))


class Blend:
    """Weighted average of several models' probabilities over the union of their classes."""

    def __init__(self, parts: Sequence[tuple[float, Callable[[], Any]]]) -> None:
        self.parts = parts
        self.classes: list[str] = []

    def fit(self, reports: Sequence[Report], labels: Sequence[str]) -> Blend:
        self._models = [(w, make().fit(reports, labels)) for w, make in self.parts]
        self.classes = sorted(set(labels))
        return self

    def predict_proba(self, reports: Sequence[Report]) -> np.ndarray:
        col = {c: j for j, c in enumerate(self.classes)}
        out = np.zeros((len(reports), len(self.classes)))
        for w, m in self._models:
            p = m.predict_proba(reports)
            for j, c in enumerate(m.classes):
                out[:, col[c]] += w * p[:, j]
        return out


EN_CANDIDATES: dict[str, Callable[[], Any]] = {
    "plain TF-IDF + LR": PlainTfidfClassifier,
    "ours (TextClassifier)": TextClassifier,
    "linear SVM, softmax": SoftSvm,
    "ours + kNN 0.9 / 0.1": lambda: Blend([(0.9, TextClassifier), (0.1, Knn)]),
    "ours + kNN 0.8 / 0.2": lambda: Blend([(0.8, TextClassifier), (0.2, Knn)]),
}


def english(data: Path, test: str | None) -> None:
    df = pd.read_csv(data / "text" / "en_seeclickfix_georgia.csv")
    lab = df.dropna(subset=["type"]).copy()
    lab["t"] = pd.to_datetime(lab.created_at, format="%m/%d/%Y - %I:%M%p")
    d = lab.sort_values("t", kind="stable").drop_duplicates("text").reset_index(drop=True)
    reports = [Report(s if isinstance(s, str) else "", b if isinstance(b, str) else "")
               for s, b in zip(d.summary, d.description, strict=True)]
    y = d.type.tolist()
    cut = int(len(d) * 0.8)
    windows = [(int(cut * a), int(cut * b)) for a, b in ((0.4, 0.6), (0.6, 0.8), (0.8, 1.0))]
    print("  validation windows (train on every report before each): " + "; ".join(
        f"{b - a} reports {d.t[a]:%Y-%m-%d} … {d.t[b - 1]:%Y-%m-%d}" for a, b in windows))
    names = list(EN_CANDIDATES)
    if test is not None and test not in EN_CANDIDATES:
        raise SystemExit(f"--test: unknown candidate {test!r}; one of {names}")
    base: list[float] = []
    for name in names:
        t0 = time.perf_counter()
        wins = windows + ([(cut, len(d))] if name == test or (
            test is not None and name.startswith(("plain", "ours (Text"))) else [])
        f1 = [scores(y[a:b], (m := EN_CANDIDATES[name]().fit(reports[:a], y[:a]))
                     .predict_proba(reports[a:b]), m.classes).macro_f1 for a, b in wins]
        if name.startswith("ours (Text"):
            base = f1
        mean = float(np.mean(f1[:3]))
        rel = f"  vs ours {mean - float(np.mean(base[:3])):+.3f}" if base else ""
        tail = f"  | TEST {f1[3]:.3f}" if len(f1) > 3 else ""
        print(f"    {name:28s} " + " / ".join(f"{v:.3f}" for v in f1[:3])
              + f"  mean {mean:.3f}{rel}{tail}  ({time.perf_counter() - t0:.0f} s)",
              flush=True)


# ------------------------------------------------------------------ dispatch
def dispatch(data: Path) -> None:
    df = bench.sf311(data)
    cases = bench._cases(df)
    train = cases[: int(len(df) * 0.8)]
    vcut = int(len(train) * 0.8)
    fit_part, val = train[:vcut], train[vcut:]
    directory = {a: a for a in sorted(df["Responsible.Agency"].unique())}
    truth = [str(c.department) for c in val]
    print(f"  validation {len(val)} cases {val[0].at:%Y-%m-%d} … {val[-1].at:%Y-%m-%d} "
          f"(fitted on the {len(fit_part)} before; the test part is not read)")

    def make() -> DispatchModel:
        return DispatchModel(memory_weight=0.35, name_threshold=0.6, directory=directory)

    def rank(m: DispatchModel, part: Sequence[DispatchCase]) -> list[list[str]]:
        return [m.rank(c, 0.65 * t + 0.35 * mm)
                for c, (t, mm) in zip(part, m.walk_forward(part), strict=True)]

    def show(label: str, ranked: list[list[str]], t0: float) -> None:
        acc = np.mean([r[:1] == [y] for r, y in zip(ranked, truth, strict=True)])
        top3 = np.mean([y in r[:3] for r, y in zip(ranked, truth, strict=True)])
        print(f"    {label:34s} accuracy {acc:.4f}  top-3 {top3:.4f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    t0 = time.perf_counter()
    show("live memory (fitted once)", rank(make().fit(fit_part), val), t0)
    t0 = time.perf_counter()
    weeks = pd.Series([c.at for c in val]).dt.to_period("W-SUN")
    weekly: list[list[str]] = []
    for w in weeks.unique():
        start = w.start_time.to_pydatetime()
        part = [c for c, x in zip(val, weeks, strict=True) if x == w]
        weekly += rank(make().fit([c for c in train if c.at < start]), part)
    show(f"retrained weekly ({len(weeks.unique())} trainings)", weekly, t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--only", default="en,dispatch")
    ap.add_argument("--test", default=None,
                    help="English: also score this one candidate on the test part (once)")
    args = ap.parse_args()
    bench.header()
    parts = set(args.only.split(","))
    if "en" in parts:
        print("== SeeClickFix English, macro-F1 on three windows of the training part")
        english(args.data, args.test)
    if "dispatch" in parts:
        print("== SF 311 dispatch, the training part's last fifth")
        dispatch(args.data)


if __name__ == "__main__":
    main()
