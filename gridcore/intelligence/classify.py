"""Smart classification (智能分类): the words of a report → its category, top-k with reasons.

A logistic regression over the features of ``gridcore.intelligence.features`` (balanced class
weights, so that rare categories are not drowned by the frequent ones). Each suggestion names
the words or character n-grams that pushed the report towards that category most, so a
dispatcher can see why ("路灯", "不亮" → 路灯损坏).

Intake uses ``decide``: above the confidence threshold a report is filed with the predicted
category (``category_source: predicted``); below, it is refused with the top 3 as suggestions.
The threshold comes from the held-out accuracy/coverage curve (``evaluation.coverage_curve``).

Words the model does not know give it nothing to go on: gibberish ("asdkjh qwe") still gets a
top class, at about the prior's probability. ``TextClassifier.evidence`` says so: how many of
the text's features the model knows, and how far its answer moved from its answer to no text at
all (the prior). Below ``MIN_EVIDENCE`` there is no suggestion from the words, and ``decide``
never files on such a guess, whatever the threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from gridcore.intelligence.errors import NotEnoughHistory, NotFitted
from gridcore.intelligence.features import (
    CHINESE,
    ENGLISH,
    BackgroundSpace,
    FeatureConfig,
    Report,
    TextFeatures,
    detect_language,
)

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One candidate category with its probability and the terms that drove it."""

    category: str
    probability: float
    drivers: tuple[str, ...] = ()


# The least total-variation distance between the answer to a text and the answer to no text at
# all (0–1: the share of probability the words moved between classes) that counts as evidence.
# Measured on the demo's model (18 classes, prior 4–8 % each): letters the model knows only as
# character n-grams moved it 0.03–0.08 ("asdkjh qwe" 0.05, "hello world" 0.08, "这里有问题"
# 0.04), a known but weak phrase ("井盖丢失") 0.10, "路灯" 0.22, "street lamp out" 0.92.
MIN_EVIDENCE = 0.1


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the words of a report gave the model to go on.

    ``basis``: ``words`` (the answer rests on words the model knows), ``unknown_words`` (none
    of the text's words or n-grams is in the model's vocabulary) or ``near_prior`` (some are,
    but they move the answer less than ``MIN_EVIDENCE`` from the answer to no text at all).
    """

    basis: str
    known_terms: int  # the text's words (Chinese: character n-grams) the model knows
    shift: float  # total variation distance between the answer and the prior, 0–1

    @property
    def found(self) -> bool:
        return self.basis == "words"

    def public(self) -> dict[str, object]:
        return {"basis": self.basis, "known_terms": self.known_terms,
                "shift": round(self.shift, 4), "min_shift": MIN_EVIDENCE}


@dataclass(frozen=True, slots=True)
class Decision:
    """Intake's answer for a report without a category."""

    filed: bool  # True: file with ``category``; False: ask the reporter (HTTP 422)
    category: str | None
    confidence: float
    threshold: float
    suggestions: tuple[Suggestion, ...] = field(default=())
    evidence: Evidence | None = None

    @property
    def category_source(self) -> str | None:
        return "predicted" if self.filed else None

    @property
    def no_evidence(self) -> bool:
        """The words gave the model nothing to go on: no class, not even a suggested one."""
        return self.evidence is not None and not self.evidence.found


def decide(suggestions: Sequence[Suggestion], threshold: float,
           evidence: Evidence | None = None) -> Decision:
    """File with the top category when its probability reaches ``threshold`` and the words
    are evidence for it (``evidence``, when given, is found); else refuse."""
    if not suggestions:
        return Decision(False, None, 0.0, threshold, (), evidence)
    top = suggestions[0]
    filed = top.probability >= threshold and (evidence is None or evidence.found)
    return Decision(filed, top.category if filed else None, top.probability, threshold,
                    tuple(suggestions), evidence)


class TextClassifier:
    """Report text → category probabilities (智能分类).

    ``language`` "auto" picks the Chinese or English features from the training texts.
    ``class_terms`` maps a category to keywords (usually its taxonomy names, see
    ``features.terms_from_names``); ``background`` is a ``BackgroundSpace`` fitted on unlabelled
    texts (it is kept inside the model, so serving needs nothing else).
    """

    def __init__(self, language: str = "auto", *, C: float = 20.0, balanced: bool = True,
                 class_terms: Mapping[str, Sequence[str]] | None = None,
                 background: BackgroundSpace | None = None,
                 config: FeatureConfig | None = None) -> None:
        self.language = language
        self.C = C
        self.balanced = balanced
        self.class_terms = dict(class_terms or {})
        self.background = background
        self.config = config
        self._features: TextFeatures | None = None
        self._model: LogisticRegression | None = None
        self._prior_proba: NDArray[np.float64] | None = None  # the answer to no text

    @property
    def classes(self) -> list[str]:
        if self._model is None:
            raise NotFitted("the classifier is not trained")
        return [str(c) for c in self._model.classes_]

    def fit(self, reports: Sequence[Report], labels: Sequence[str],
            sample_weight: Sequence[float] | None = None) -> TextClassifier:
        if len(reports) != len(labels):
            raise ValueError(f"{len(reports)} reports but {len(labels)} labels")
        if len(set(labels)) < 2:
            raise NotEnoughHistory(
                f"classification needs at least two categories in the history, got "
                f"{len(set(labels))} over {len(labels)} reports")
        config = self.config
        if config is None:
            lang = self.language if self.language in ("zh", "en") else detect_language(
                r.text() for r in reports)
            config = CHINESE if lang == "zh" else ENGLISH
        # imported here, not with the module: see features.BackgroundSpace.fit
        from sklearn.linear_model import LogisticRegression

        self._prior_proba = None
        self._features = TextFeatures(config, self.class_terms, self.background).fit(reports)
        x = self._features.transform(reports)
        self._model = LogisticRegression(C=self.C, max_iter=3000,
                                         class_weight="balanced" if self.balanced else None)
        self._model.fit(x, list(labels), sample_weight=None if sample_weight is None
                        else np.asarray(sample_weight, dtype=float))
        return self

    def _ready(self) -> tuple[TextFeatures, LogisticRegression]:
        if self._features is None or self._model is None:
            raise NotFitted("the classifier is not trained")
        return self._features, self._model

    def predict_proba(self, reports: Sequence[Report]) -> NDArray[np.float64]:
        features, model = self._ready()
        return np.asarray(model.predict_proba(features.transform(reports)), dtype=np.float64)

    def predict(self, reports: Sequence[Report]) -> list[str]:
        classes = self.classes
        return [classes[i] for i in self.predict_proba(reports).argmax(axis=1)]

    def _prior(self) -> NDArray[np.float64]:
        """The answer to no text at all (kept once computed; models stored before it was
        added compute it at first use)."""
        prior: NDArray[np.float64] | None = getattr(self, "_prior_proba", None)
        if prior is None:
            prior = self.predict_proba([Report("")])[0]
            self._prior_proba = prior
        return prior

    def evidence(self, report: Report) -> Evidence:
        """How much the words of ``report`` tell the model (see ``Evidence``)."""
        features, model = self._ready()
        known = len(features.known_terms(report))
        if not known:  # a latent topic or a few shared letters of unknown words: no evidence
            return Evidence("unknown_words", 0, 0.0)
        proba = np.asarray(model.predict_proba(features.transform([report]))[0],
                           dtype=np.float64)
        shift = float(0.5 * np.abs(proba - self._prior()).sum())
        return Evidence("words" if shift >= MIN_EVIDENCE else "near_prior", known, shift)

    def suggest(self, report: Report, k: int = 3, drivers: int = 5) -> list[Suggestion]:
        """Top ``k`` categories with probabilities and up to ``drivers`` terms each."""
        features, model = self._ready()
        x = features.transform([report])
        proba = model.predict_proba(x)[0]
        names = features.feature_names
        row = x.tocsr()
        out = []
        for ci in np.argsort(-proba)[:k]:
            contrib = row.data * model.coef_[ci, row.indices]
            terms: list[str] = []
            for j in np.argsort(-contrib):
                if contrib[j] <= 0 or len(terms) >= drivers:
                    break
                name = names[row.indices[j]]
                if name.startswith("topic:"):
                    continue  # a latent dimension explains nothing to a person
                term = name.split(":", 1)[1].strip()
                if name.startswith("taxonomy:"):
                    term = f"[{term}]"  # the class's taxonomy keywords matched
                if term and term not in terms:
                    terms.append(term)
            out.append(Suggestion(str(model.classes_[ci]), float(proba[ci]), tuple(terms)))
        return out
