"""How sure a geocoding candidate is (置信度) — pure rules, no I/O.

Storage finds candidates with PostgreSQL (``pg_trgm`` similarities of the search keys,
full-text matches, Chinese bigram overlaps) and hands their measurements here; this module
turns them into one confidence in [0, 1] per candidate and says why, term by term:

* **text** — how well a name matches: the best of the whole keys' similarity (the mean of
  their trigram similarity and their edit similarity — trigrams alone punish one typo in a
  short name hard: ``anankatu`` / ``annankatu`` 0.73, edits 0.94) and, at
  :data:`PARTIAL` weight, the word similarity either way (partial input; a street inside a
  longer Chinese address) — a place's name found inside a longer query counts by the share of
  the query it covers, so ``Helsinki`` does not answer ``Hilton Helsinki Strand``; where both
  sides hold Chinese characters, the characters' bigram agreement weighs :data:`CHARS_WEIGHT`
  beside the pinyin key (a homophone typo keeps the pinyin's share);
* **house number** — exact 1.0, another letter of the same number 0.9, inside a stored range
  0.95; another number on the street (the nearest stored one stands in) 0.6;
* **precision** — a street without a number is a line, not a point: ×0.6; an intersection
  whose streets do not quite touch (a gap up to the tolerance) ×0.9;
* **ambiguity** — when another candidate elsewhere (farther than :data:`SAME_PLACE_M`) scores
  within :data:`AMBIGUOUS_GAP` of the best, the best is not sure: ×0.8.

The factors are this project's choices, documented here and in each answer's ``match``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from typing import Any

from gridcore.geocoding.query import Street
from gridcore.geocoding.text import containment, dice

PARTIAL = 0.9
PARTIAL_FLOOR = 0.6
CHARS_WEIGHT = 0.25
NUMBER_FACTORS = {"exact": 1.0, "range": 0.95, "letter": 0.9, "other": 0.6}
STREET_ONLY = 0.6
NEAR_MISS = 0.9
AMBIGUOUS = 0.8
AMBIGUOUS_GAP = 0.08
SAME_PLACE_M = 60.0
DUPLICATE_M = 200.0  # one address label this close is one address (a building's entrances)
KINDS = ("address", "place", "street", "intersection")


@dataclass(frozen=True)
class TextMatch:
    """What storage measured of one name against one query string."""

    similarity: float  # pg_trgm similarity(key, query key)
    query_in_name: float  # word_similarity(query key, key): the query is part of the name
    name_in_query: float  # word_similarity(key, query key): the name is part of the query
    grams: tuple[str, ...] = ()  # the name's Chinese bigrams
    key: str = ""  # the name's search key (its length weighs a name found inside the query)

    def score(self, query: Street, covering: bool = False) -> float:
        """``covering`` (places): a name found inside the query counts by the share of the
        query it covers, and a query found inside a name by the share of the name it covers
        (from :data:`PARTIAL_FLOOR` up); streets are taken whole (the query's street part is
        parsed already)."""
        inside, part = self.name_in_query, self.query_in_name
        if covering and query.key and self.key:
            inside *= min(1.0, len(self.key) / len(query.key))
            part *= PARTIAL_FLOOR + (1 - PARTIAL_FLOOR) * min(1.0, len(query.key) / len(self.key))
        whole = self.similarity
        if self.key and sorted(self.key.split()) != sorted(query.key.split()):
            # the same words in another order keep the trigrams' answer; else edits count
            whole = (whole + SequenceMatcher(None, query.key, self.key).ratio()) / 2
        latin = max(whole, PARTIAL * part, PARTIAL * inside)
        if query.grams and self.grams:
            chars = max(dice(query.grams, self.grams),
                        PARTIAL * containment(self.grams, query.grams))
            return (1 - CHARS_WEIGHT) * latin + CHARS_WEIGHT * chars
        return latin


def number_agreement(asked: str, stored: str) -> str | None:
    """How a stored house number answers the asked one: exact, range, letter, other, or None
    when either is missing."""
    if not asked or not stored:
        return None
    if asked == stored:
        return "exact"
    a, s = _parts(asked), _parts(stored)
    if a is None or s is None:
        return "other"
    if s[1] is not None and s[0] <= a[0] <= s[1] and a[1] is None:
        return "range"
    if a[0] == s[0] and (a[1], s[1]) == (None, None):
        return "letter"
    return "other"


def _parts(key: str) -> tuple[int, int | None] | None:
    """(first number, last number of a range or None) of a number key (``12b`` → (12, None))."""
    head = key.rstrip("abcdefghijklmnopqrstuvwxyz")
    first, _, last = head.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    return int(first), int(last) if last else None


def number_base(key: str) -> int | None:
    """The leading number of a house number key (``12b`` → 12), to find the nearest one."""
    parts = _parts(key)
    return parts[0] if parts else None


@dataclass(frozen=True)
class Candidate:
    """One place an answer may be, with what storage knows of it and, once ranked, its
    confidence and the terms behind it."""

    kind: str  # address | place | street | intersection
    label: str
    lon: float
    lat: float
    text_score: float
    number: str | None = None  # the number agreement (address candidates)
    touching: bool = True  # intersections: do the two streets meet
    ref: dict[str, Any] = field(default_factory=dict)  # ids, grid, street names…
    confidence: float = 0.0
    terms: dict[str, Any] = field(default_factory=dict)

    def scored(self) -> Candidate:
        terms: dict[str, Any] = {"text": round(self.text_score, 3)}
        value = self.text_score
        if self.kind == "address" and self.number is not None:
            terms["house_number"] = self.number
            value *= NUMBER_FACTORS[self.number]
        if self.kind == "street":
            terms["precision"] = "street without a house number"
            value *= STREET_ONLY
        if self.kind == "intersection" and not self.touching:
            terms["precision"] = "the streets come close but do not meet"
            value *= NEAR_MISS
        return replace(self, confidence=round(min(max(value, 0.0), 1.0), 3), terms=terms)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "confidence": self.confidence,
                "lon": self.lon, "lat": self.lat, "match": self.terms, **self.ref}


def _metres(a: Candidate, b: Candidate) -> float:
    """Equirectangular distance: enough to tell "the same place" (tens of metres) apart."""
    mid = math.radians((a.lat + b.lat) / 2)
    dx = math.radians(b.lon - a.lon) * math.cos(mid) * 6_371_008.8
    dy = math.radians(b.lat - a.lat) * 6_371_008.8
    return math.hypot(dx, dy)


def rank(candidates: Sequence[Candidate], limit: int = 10) -> list[Candidate]:
    """Scored candidates, best first: the same label found twice within :data:`DUPLICATE_M`
    is one candidate (an address node inside its building, two entrances), and a best
    candidate with a close rival elsewhere is marked ambiguous."""
    scored = sorted((c.scored() for c in candidates),
                    key=lambda c: (-c.confidence, KINDS.index(c.kind), c.label))
    kept: list[Candidate] = []
    for c in scored:
        if any(k.label == c.label and _metres(k, c) <= DUPLICATE_M for k in kept):
            continue
        kept.append(c)
    if kept:
        best = kept[0]
        close = [i for i, c in enumerate(kept) if best.confidence - c.confidence < AMBIGUOUS_GAP]
        elsewhere = [kept[i] for i in close if _metres(best, kept[i]) > SAME_PLACE_M]
        if elsewhere:  # the top of the list is not one place: none of it is sure
            for i in close:
                c = kept[i]
                rival = elsewhere[0] if i == 0 else best
                kept[i] = replace(c, confidence=round(c.confidence * AMBIGUOUS, 3),
                                  terms={**c.terms, "ambiguous_with": rival.label})
            kept.sort(key=lambda c: (-c.confidence, KINDS.index(c.kind), c.label))
    return kept[:limit]
