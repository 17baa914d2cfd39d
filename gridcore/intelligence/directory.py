"""The city's departments by name, for dispatch's cold start (智能派遣).

A department that has had no case yet (a new queue, a renamed office) has no history for the
text model or the case memory to learn from, yet its name often says what it handles: the SF
311 request type "puc - water_quality - request_for_service" goes to "PUC Water Quality Queue",
"entertainment_commission - …" to "Entertainment Commission". ``DepartmentDirectory`` matches
the words of a case's class path against the department table's names (character n-grams, so
"water_quality" meets "Water Quality" and Chinese names need no segmenter); dispatch uses the
best match to complete its top 3 when the model's own third choice is weak.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

_SEPARATORS = re.compile(r"[_\-|/]+")


def _norm(text: str) -> str:
    return _SEPARATORS.sub(" ", text.lower())


class DepartmentDirectory:
    """Department code → name; ``match`` finds the department whose name is most like a class."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.codes = [c for c, n in names.items() if str(n).strip()]
        self._vec: TfidfVectorizer | None = None
        if self.codes:
            # imported here, not with the module: see features.BackgroundSpace.fit
            from sklearn.feature_extraction.text import TfidfVectorizer

            self._vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4))
            self._names = self._vec.fit_transform([_norm(str(names[c])) for c in self.codes])

    def __len__(self) -> int:
        return len(self.codes)

    def match(self, path: Sequence[str], exclude: Collection[str] = ()
              ) -> tuple[str, float] | None:
        """The best-named department for the class words ``path`` (cosine of character
        n-grams, 0…1), leaving out ``exclude``; None when no name shares anything."""
        if self._vec is None:
            return None
        query = self._vec.transform([_norm(" ".join(p for p in path if p))])
        sims = np.asarray((self._names @ query.T).todense()).ravel()
        for j in np.argsort(-sims):
            if sims[j] <= 0:
                return None
            if self.codes[j] not in exclude:
                return self.codes[j], float(sims[j])
        return None
