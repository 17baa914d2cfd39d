"""What a geocoding query asks for (地址解析) — pure rules, no I/O.

A query is read three ways at once, and the geocoder looks each reading up:

* an **intersection** — two streets joined by a connector: ``建国路与东三环中路交叉口``,
  ``建国路/东三环路``, ``X St & Y St``, ``A and B``, ``corner of A and B``, ``A ja B`` (Finnish),
  ``A och B`` (Swedish);
* a **street and house number** — ``Mannerheimintie 6``, ``6 Main St``, ``Bulevardi 7 A``,
  ``建国路88号`` (a Chinese address's leading province / city / district / street-office names,
  ``北京市朝阳区``, are set apart and reported, not required to match);
* **free text** — a named place (``Hilton Strand``, ``国贸大厦``) or a street alone.

Every reading is kept (a place named "A and B" must still be found by its name); the scores of
their candidates decide.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gridcore.errors import ValidationError
from gridcore.geocoding.text import cjk_grams, fold, has_cjk, search_key

MAX_QUERY_CHARS = 200

# Chinese: "A与B交叉口", "A和B路口", "A/B"; the suffix is optional when a connector joins two
# street names.
_ZH_CROSS_SUFFIX = r"(?:交叉路口|十字路口|交叉口|交汇处|交界处|交口|路口|口)"
_ZH_CONNECTOR = r"(?:与|和|跟|同|及|、|/|&|＆)"
_ZH_CROSS = re.compile(rf"^(?P<a>.+?){_ZH_CONNECTOR}(?P<b>.+?){_ZH_CROSS_SUFFIX}?$")
_ZH_ROAD_END = re.compile(r"(?:路|街|道|巷|胡同|弄|里|环|线|桥)$")
# Latin: connectors between two names (spaces around words, so "Anderson" is no "and").
_LATIN_CROSS = re.compile(
    r"^(?:(?:the\s+)?(?:corner|intersection|junction)\s+of\s+)?(?P<a>.+?)"
    r"\s*(?:&|/|\+|\s@\s|\s(?:and|at|x|ja|och|und|et)\s)\s*(?P<b>.+?)"
    r"(?:\s+(?:intersection|junction|corner|risteys))?$", re.IGNORECASE)
# A Chinese address's administrative prefix: province, city, district / county, street office.
# (a 社区, 小区, 园区, 景区 or 校区 ends in 区 but is no district: "多福巷社区服务站" is a place)
_ZH_ADMIN = re.compile(
    r"^(?P<admin>(?:[^\d\s]{1,7}?(?:省|自治区))?(?:[^\d\s]{1,7}?市)?"
    r"(?:[^\d\s]{1,7}?(?:区(?<!社区)(?<!小区)(?<!园区)(?<!景区)(?<!校区)|县|旗))?"
    r"(?:[^\d\s]{1,9}?(?:街道|镇|乡))?)(?P<rest>.+)$")
# "建国路88号", and "建国路88" as callers say it (a number ending the address is a house number)
_ZH_NUMBER = re.compile(
    r"^(?P<street>.*?\D)\s*(?P<num>\d+\s*(?:-\s*\d+)?)\s*(?:(?:号|號)(?P<tail>.*)|$)")
# Latin: "Street 12", "Street 12 B", "Street 12b 3", "12 Street", "12b Street".
_NUM = r"\d+(?:\s*-\s*\d+)?(?:\s?[a-z](?![a-z]))?"
_NUMBER_AFTER = re.compile(rf"^(?P<street>.*?[^\W\d][^\d]*?)\s+(?P<num>{_NUM})(?P<tail>(?:\W.*)?)$",
                           re.IGNORECASE)
_NUMBER_BEFORE = re.compile(rf"^(?P<num>{_NUM})\s*,?\s+(?P<street>[^\W\d].*)$", re.IGNORECASE)
_NUMBER_KEY = re.compile(r"(\d+)(?:\s*-\s*(\d+))?(?:\s*([a-z])(?![a-z]))?")


def number_key(text: str) -> str:
    """A house number as compared: ``3 B`` → ``3b``, ``88号`` → ``88``, ``1-3`` → ``1-3``,
    ``2, 2. krs.`` → ``2`` (the first number and its letter); ``""`` when there is none."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    match = _NUMBER_KEY.search(folded)
    if not match:
        return ""
    first, last, letter = match.groups()
    return first + (f"-{last}" if last else "") + (letter or "")


@dataclass(frozen=True)
class Street:
    """One street name of a query: as typed, its trigram key and its Chinese bigrams."""

    text: str
    key: str
    grams: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> Street:
        text = text.strip(" ,，。、")
        return cls(text, search_key(text), tuple(cjk_grams(text)))


@dataclass(frozen=True)
class AddressQuery:
    """A query read every way it can be (see the module): ``text`` for places and streets,
    ``street`` + ``number`` when it names a house number, ``crossing`` when it names two
    streets, ``admin`` the Chinese administrative prefix set apart."""

    raw: str
    text: Street
    street: Street | None = None
    number: str = ""
    crossing: tuple[Street, Street] | None = None
    admin: str = ""

    @property
    def readings(self) -> list[str]:
        out = ["text"]
        if self.street is not None:
            out.insert(0, "address")
        if self.crossing is not None:
            out.insert(0, "intersection")
        return out

    def as_dict(self) -> dict[str, object]:
        return {"query": self.raw, "readings": self.readings,
                "street": self.street.text if self.street else None, "number": self.number or None,
                "intersection": [s.text for s in self.crossing] if self.crossing else None,
                "ignored_prefix": self.admin or None}


def _crossing(text: str) -> tuple[str, str] | None:
    if has_cjk(text):
        m = _ZH_CROSS.match(text)
        if m:
            a, b = m.group("a").strip(), m.group("b").strip()
            suffixed = re.search(_ZH_CROSS_SUFFIX + "$", text) is not None
            if a and b and (suffixed or (_ZH_ROAD_END.search(a) and _ZH_ROAD_END.search(b))):
                return a, b
        return None
    m = _LATIN_CROSS.match(text)
    if m and m.group("a").strip() and m.group("b").strip():
        a, b = m.group("a").strip(), m.group("b").strip()
        if not (a.isdigit() or b.isdigit()):
            return a, b
    return None


def _address(text: str) -> tuple[str, str] | None:
    """(street, house number) when the text names a house number."""
    if has_cjk(text):
        m = _ZH_NUMBER.match(text)
        if m:
            return m.group("street"), number_key(m.group("num"))
        return None
    for pattern in (_NUMBER_AFTER, _NUMBER_BEFORE):
        m = pattern.match(text)
        if m and fold(m.group("street")):
            return m.group("street"), number_key(m.group("num"))
    return None


def parse(q: str) -> AddressQuery:
    """Every reading of ``q``; a ValidationError for an empty or oversized query."""
    raw = unicodedata.normalize("NFKC", q or "").strip()
    if not fold(raw):
        raise ValidationError("q must name an address, a place or an intersection",
                              field="q", value=q)
    if len(raw) > MAX_QUERY_CHARS:
        raise ValidationError(f"q is {len(raw)} characters; at most {MAX_QUERY_CHARS}",
                              field="q", value=raw[:40] + "…")
    admin = ""
    body = raw
    if has_cjk(raw):
        m = _ZH_ADMIN.match(raw)
        if m and m.group("admin") and fold(m.group("rest")):
            admin, body = m.group("admin"), m.group("rest")
    crossing = _crossing(body)
    found = None if crossing else _address(body)
    return AddressQuery(
        raw=raw, text=Street.of(body), admin=admin,
        street=Street.of(found[0]) if found else None, number=found[1] if found else "",
        crossing=(Street.of(crossing[0]), Street.of(crossing[1])) if crossing else None)
