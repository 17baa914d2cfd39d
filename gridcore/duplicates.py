"""Duplicate-event detection (重复事件识别): score how likely an open case reports the same
problem as a new one.

The score adds up bounded signals, each explained in the result so a dispatcher sees *why* a
candidate is offered before merging (并案):

* distance within the class's dedup radius (``dedup_radius_m`` of the taxonomy: 30 m for a
  manhole cover, 200 m for a dirty road) — closer scores higher;
* time — reports within the window, more recent scoring higher;
* class — the same class, or a related one (same major class, e.g. two kinds of manhole cover);
* text similarity of the descriptions over character n-grams, which works for Chinese without
  word segmentation (a segmenter would add a dictionary dependency for little gain on short
  reports);
* the same linked city part (部件) — a strong signal: two reports about lamp 0120… are the
  same broken lamp whatever their wording.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

DEFAULT_WINDOW = timedelta(hours=72)
WEIGHTS = {"distance": 0.35, "time": 0.15, "class": 0.2, "text": 0.2, "part": 0.4}
THRESHOLD = 0.45  # below this a pair is not offered as a candidate


@dataclass(frozen=True, slots=True)
class CaseSketch:
    """The fields of a case that duplicate scoring looks at."""

    category_key: str
    at: datetime
    description: str = ""
    part_code: str | None = None
    case_id: int | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    case_id: int | None
    score: float
    distance_m: float
    signals: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        return {"case_id": self.case_id, "score": round(self.score, 3),
                "distance_m": round(self.distance_m, 1),
                "signals": {k: round(v, 3) for k, v in self.signals.items()}}


_SPACE = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """NFKC (full-width → half-width), lower case, punctuation and spaces dropped."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text or "").lower())


def ngrams(text: str, n: int = 2) -> Counter[str]:
    s = normalise(text)
    if len(s) < n:
        return Counter([s]) if s else Counter()
    return Counter(s[i:i + n] for i in range(len(s) - n + 1))


@lru_cache(maxsize=4096)
def _profile(text: str, n: int) -> tuple[Counter[str], float]:
    """n-gram counts and their norm. Cached: one report is compared with every open case
    nearby, and reports repeat the same short descriptions (路灯不亮, 井盖破损) all day."""
    grams = ngrams(text, n)
    return grams, math.sqrt(sum(v * v for v in grams.values()))


@lru_cache(maxsize=16384)
def text_similarity(a: str, b: str, n: int = 2) -> float:
    """Cosine similarity of character n-gram counts, 0 … 1. Cached per pair: a report is
    scored against every open case nearby, mostly with the same few descriptions."""
    (ga, na), (gb, nb) = _profile(a or "", n), _profile(b or "", n)
    if not na or not nb:
        return 0.0
    if len(gb) < len(ga):
        ga, gb = gb, ga
    return sum(v * gb[k] for k, v in ga.items() if k in gb) / (na * nb)


def class_relation(a: str, b: str) -> float:
    """1 for the same class, 0.5 for a related one (same kind and major class), else 0."""
    if a == b:
        return 1.0
    if a[:1] == b[:1] and a[1:3] == b[1:3]:
        return 0.5
    return 0.0


_W_DISTANCE, _W_TIME, _W_CLASS, _W_TEXT, _W_PART = (
    WEIGHTS[k] for k in ("distance", "time", "class", "text", "part"))


def _signals(new: CaseSketch, other: CaseSketch, distance_m: float, radius_m: float,
             window: timedelta) -> tuple[float, dict[str, float]] | None:
    apart = abs(new.at - other.at)
    if distance_m > radius_m or apart > window:
        return None
    same_part = 1.0 if new.part_code and new.part_code == other.part_code else 0.0
    related = class_relation(new.category_key, other.category_key)
    if related == 0.0 and not same_part:
        return None  # unrelated problems that merely happen to be close (no text to compare)
    near = 1.0 - distance_m / radius_m if radius_m > 0 else 1.0
    recent = 1.0 - apart / window
    text = text_similarity(new.description, other.description)
    total = (_W_DISTANCE * near + _W_TIME * recent + _W_CLASS * related + _W_TEXT * text
             + _W_PART * same_part)
    return min(total, 1.0), {"distance": near, "time": recent, "class": related,
                             "text": text, "part": same_part}


def score(new: CaseSketch, other: CaseSketch, distance_m: float, radius_m: float,
          window: timedelta = DEFAULT_WINDOW) -> Candidate | None:
    """Score ``other`` as a duplicate of ``new``; None when it is out of range or window."""
    found = _signals(new, other, distance_m, radius_m, window)
    return Candidate(other.case_id, found[0], distance_m, found[1]) if found else None


def rank(new: CaseSketch, others: list[tuple[CaseSketch, float]], radius_m: float,
         window: timedelta = DEFAULT_WINDOW, threshold: float = THRESHOLD,
         limit: int = 5) -> list[Candidate]:
    """The best candidates among ``(case, distance_m)`` pairs, best first."""
    scored = [Candidate(other.case_id, found[0], d, found[1]) for other, d in others
              if (found := _signals(new, other, d, radius_m, window))
              and found[0] >= threshold]
    scored.sort(key=lambda c: (-c.score, c.distance_m))
    return scored[:limit]
