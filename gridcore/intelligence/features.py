"""Text features for classification (智能分类) and dispatch (智能派遣).

Chinese is read without word segmentation: character n-grams of the title and the body. A word
segmenter (jieba) was measured on the labelled hotline messages and did not help (NOTES.md), so
no dictionary is needed at run time. English uses word unigrams and character n-grams within
words, which absorb spelling variants ("pot hole", "pothole", "potholes").

Two optional helpers make small labelled sets go further:
- ``class_terms``: the taxonomy's own names (e.g. 路灯, 井盖, "street lighting") as one feature per
  class counting how many of its terms the text contains;
- ``BackgroundSpace``: a latent semantic space (LSA, 300 dimensions) learnt from unlabelled texts
  (every stored case, labelled or not); no label is used, so it is fitted once and shared by
  every retraining and every cross-validation fold.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from gridcore.intelligence.errors import NotEnoughHistory, NotFitted

if TYPE_CHECKING:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline

Language = Literal["zh", "en"]
_CJK = re.compile(r"[\u3400-\u9fff]")
_SPLIT_TERMS = re.compile(r"[\s/、,，;；()（）和与及&]+")
_GENERIC_TERMS = {"其他", "其它", "other", "others", "misc", "general"}


@dataclass(frozen=True, slots=True)
class Report:
    """The words of a report: its title and its description (either may be empty)."""

    title: str
    body: str = ""

    def text(self) -> str:
        return f"{self.title}。{self.body}" if self.body else self.title


def detect_language(texts: Iterable[str]) -> Language:
    """"zh" when more than a fifth of the letters are CJK ideographs, else "en"."""
    cjk = letters = 0
    for t in texts:
        cjk += len(_CJK.findall(t))
        letters += sum(ch.isalpha() for ch in t)
    return "zh" if letters and cjk / letters > 0.2 else "en"


def terms_from_names(names: Iterable[str]) -> list[str]:
    """Keywords from taxonomy names: split on separators, drop generic words and 1-letter bits.

    ``["城市建设和市政管理", "Pothole/paving"]``
    → ``["城市建设", "市政管理", "pothole", "paving"]``.
    """
    out: list[str] = []
    for name in names:
        for part in _SPLIT_TERMS.split(str(name).strip().lower()):
            if len(part) >= 2 and part not in _GENERIC_TERMS and part not in out:
                out.append(part)
    return out


class BackgroundSpace:
    """LSA over unlabelled texts: TF-IDF (characters 1-2 for Chinese, words 1-2 for English),
    truncated SVD, unit length."""

    def __init__(self, dims: int = 300, language: Language | None = None) -> None:
        self.dims = dims
        self.language = language
        self._pipe: Pipeline | None = None

    def fit(self, texts: Sequence[str]) -> BackgroundSpace:
        if len(texts) < 10:
            raise NotEnoughHistory("a background space needs at least 10 texts")
        # scikit-learn is imported where a model is fitted, not with the module: every server
        # process imports this room, and most never fit or load a model.
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import Normalizer

        lang = self.language or detect_language(texts[:2000])
        dims = min(self.dims, len(texts) - 1)
        self._pipe = Pipeline([
            ("tfidf", TfidfVectorizer(analyzer="char" if lang == "zh" else "word",
                                      ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
            ("svd", TruncatedSVD(dims, random_state=0)), ("norm", Normalizer())])
        self._pipe.fit(list(texts))
        self.dims = dims
        return self

    def transform(self, texts: Sequence[str]) -> NDArray[np.float64]:
        if self._pipe is None:
            raise NotFitted("BackgroundSpace.transform before fit")
        return np.asarray(self._pipe.transform(list(texts)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """How reports become vectors; two presets below, chosen by ``detect_language``."""

    language: Language
    title_weight: float = 1.5
    keyword_weight: float = 0.6
    background_weight: float = 1.0


CHINESE = FeatureConfig("zh")
# Taxonomy keywords lowered English macro-F1 on SeeClickFix (NOTES.md): off for English.
ENGLISH = FeatureConfig("en", title_weight=0.0, keyword_weight=0.0)


class TextFeatures:
    """Fit on reports (and optional unlabelled background texts), then vectorise reports."""

    def __init__(self, config: FeatureConfig,
                 class_terms: Mapping[str, Sequence[str]] | None = None,
                 background: BackgroundSpace | None = None) -> None:
        self.config = config
        self.class_terms = {k: [t.lower() for t in v] for k, v in (class_terms or {}).items()}
        self.background = background
        self._blocks: list[tuple[str, TfidfVectorizer, float]] = []
        self._names: list[str] = []

    def _vectorisers(self) -> list[tuple[str, TfidfVectorizer, float]]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        c = self.config
        if c.language == "zh":
            blocks = [("body", TfidfVectorizer(analyzer="char", sublinear_tf=True), 1.0)]
            if c.title_weight:
                blocks.insert(0, ("title", TfidfVectorizer(analyzer="char", ngram_range=(1, 2),
                                                           sublinear_tf=True), c.title_weight))
            return blocks
        return [("text", TfidfVectorizer(sublinear_tf=True), 1.0),
                ("text", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                         sublinear_tf=True), 1.0)]

    @staticmethod
    def _field(reports: Sequence[Report], name: str) -> list[str]:
        if name == "title":
            return [r.title for r in reports]
        if name == "body":
            return [r.body for r in reports]
        return [r.text() for r in reports]

    def fit(self, reports: Sequence[Report]) -> TextFeatures:
        self._blocks = []
        names: list[str] = []
        for field, vec, weight in self._vectorisers():
            values = self._field(reports, field)
            if not any(v.strip() for v in values):
                continue  # e.g. no report has a body: that block would have no vocabulary
            try:
                vec.fit(values)
            except ValueError:  # min_df leaves nothing on a tiny history
                continue
            self._blocks.append((field, vec, weight))
            names += [f"{field}:{n}" for n in vec.get_feature_names_out()]
        if self.background is not None:
            names += [f"topic:{i}" for i in range(self.background.dims)]
        if self.config.keyword_weight:
            names += [f"taxonomy:{k}" for k in self.class_terms]
        self._names = names
        return self

    def transform(self, reports: Sequence[Report]) -> sparse.csr_matrix:
        if not self._names:
            raise NotFitted("TextFeatures.transform before fit")
        from scipy import sparse

        parts: list[sparse.spmatrix] = [
            weight * vec.transform(self._field(reports, field))
            for field, vec, weight in self._blocks]
        texts = [r.text().lower() for r in reports]
        if self.background is not None:
            parts.append(sparse.csr_matrix(self.config.background_weight
                                           * self.background.transform(texts)))
        if self.class_terms and self.config.keyword_weight:
            parts.append(sparse.csr_matrix(self.config.keyword_weight * self.keyword_counts(texts)))
        return sparse.hstack(parts, format="csr")

    def known_terms(self, report: Report) -> list[str]:
        """The report's terms found in the vocabulary, each once: its words where a block
        reads words (English), and character n-grams where the model reads characters
        (Chinese). A word-reading model's character n-grams count only with a CJK ideograph in
        them (Chinese has no spaces between words): any Latin letters share a few ("as",
        "we") with its vocabulary."""
        reads_words = any(vec.analyzer == "word" for _, vec, _ in self._blocks)
        found: list[str] = []
        for field, vec, _ in self._blocks:
            (value,) = self._field([report], field)
            for term in vec.build_analyzer()(value):
                if term in found or term not in vec.vocabulary_:
                    continue
                if vec.analyzer == "word" or not reads_words or _CJK.search(term):
                    found.append(term)
        return found

    def keyword_counts(self, lowered: Sequence[str]) -> NDArray[np.float64]:
        """log(1 + number of a class's taxonomy terms found), one column per class."""
        out = np.zeros((len(lowered), len(self.class_terms)))
        for j, terms in enumerate(self.class_terms.values()):
            for i, text in enumerate(lowered):
                out[i, j] = sum(1 for t in terms if t in text)
        return np.log1p(out)

    @property
    def feature_names(self) -> list[str]:
        return self._names
