"""Baselines every model is measured against in the same run (honest results).

- ``MajorityClassifier``: always the most frequent category of the history.
- ``KeywordClassifier``: the category whose taxonomy names occur most in the text (what a
  hand-written keyword table does); ties and no match fall back to the majority.
- ``PlainTfidfClassifier``: TF-IDF of the whole text (words for English, single characters for
  Chinese) and a logistic regression (C=10, no class weights): the "plain model" of issue 22.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from gridcore.intelligence.errors import NotFitted
from gridcore.intelligence.features import Report, detect_language


class MajorityClassifier:
    def __init__(self) -> None:
        self._classes: list[str] = []
        self._prior: NDArray[np.float64] = np.zeros(0)

    @property
    def classes(self) -> list[str]:
        return self._classes

    def fit(self, reports: Sequence[Report], labels: Sequence[str]) -> MajorityClassifier:
        counts = Counter(labels)
        self._classes = sorted(counts)
        self._prior = np.array([counts[c] for c in self._classes], dtype=float) / len(labels)
        return self

    def predict_proba(self, reports: Sequence[Report]) -> NDArray[np.float64]:
        if not self._classes:
            raise NotFitted("baseline not trained")
        return np.tile(self._prior, (len(reports), 1))


class KeywordClassifier(MajorityClassifier):
    """Category with the most taxonomy-term hits; probabilities ∝ hits (+ a tiny prior)."""

    def __init__(self, class_terms: Mapping[str, Sequence[str]]) -> None:
        super().__init__()
        self.class_terms = {k: [t.lower() for t in v] for k, v in class_terms.items()}

    def fit(self, reports: Sequence[Report], labels: Sequence[str]) -> KeywordClassifier:
        super().fit(reports, labels)
        self._classes = sorted(set(self._classes) | set(self.class_terms))
        counts = Counter(labels)
        self._prior = np.array([counts.get(c, 0) for c in self._classes], dtype=float)
        self._prior /= self._prior.sum()
        return self

    def predict_proba(self, reports: Sequence[Report]) -> NDArray[np.float64]:
        prior = super().predict_proba(reports)
        hits = np.zeros_like(prior)
        for j, c in enumerate(self._classes):
            terms = self.class_terms.get(c, [])
            for i, r in enumerate(reports):
                text = r.text().lower()
                hits[i, j] = sum(1 for t in terms if t in text)
        scores = hits + 1e-3 * prior
        return np.asarray(scores / scores.sum(axis=1, keepdims=True), dtype=np.float64)


class PlainTfidfClassifier:
    """TF-IDF (default settings) + logistic regression (C=10)."""

    def __init__(self, C: float = 10.0) -> None:
        self.C = C
        self._vec: TfidfVectorizer | None = None
        self._model: LogisticRegression | None = None

    @property
    def classes(self) -> list[str]:
        if self._model is None:
            raise NotFitted("baseline not trained")
        return [str(c) for c in self._model.classes_]

    def fit(self, reports: Sequence[Report], labels: Sequence[str]) -> PlainTfidfClassifier:
        texts = [r.text() for r in reports]
        zh = detect_language(texts) == "zh"
        self._vec = TfidfVectorizer(analyzer="char") if zh else TfidfVectorizer()
        self._model = LogisticRegression(C=self.C, max_iter=3000)
        self._model.fit(self._vec.fit_transform(texts), list(labels))
        return self

    def predict_proba(self, reports: Sequence[Report]) -> NDArray[np.float64]:
        if self._vec is None or self._model is None:
            raise NotFitted("baseline not trained")
        x = self._vec.transform([r.text() for r in reports])
        return np.asarray(self._model.predict_proba(x), dtype=np.float64)
