"""Search keys of address text (地址文本检索键) — pure functions, no I/O.

One key serves every script: the text is folded (NFKC: full-width digits and letters become
half-width; case-folded; Latin diacritics dropped, ``Töölö`` → ``toolo``; punctuation becomes
space) and every run of Chinese characters is spelled in toneless pinyin with its syllables
joined (``建國路`` → ``jianguolu``). PostgreSQL's ``pg_trgm`` then compares keys as Latin text,
whatever the database's locale, and a Chinese typo made through a pinyin input method — the
commonest kind, a homophone (``建果路`` for ``建国路``) — or a traditional character still
matches. Pinyin alone would confuse homophones, so the characters themselves are kept as a
set of character bigrams (:func:`cjk_grams`) that rewards exact characters. pypinyin's
dictionary spells the characters; no word segmentation is needed for either.

English street-type abbreviations are expanded on both sides (``St`` → ``street``), so
``X St & Y St`` finds ``X Street``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from functools import lru_cache

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RUN = re.compile(f"[{_CJK}]+")
_CJK_CHAR = re.compile(f"[{_CJK}]")
_NOT_WORD = re.compile(r"[^\w]+")
_SPACES = re.compile(r"\s+")
ABBREVIATIONS = {
    "st": "street", "str": "street", "rd": "road", "ave": "avenue", "av": "avenue",
    "blvd": "boulevard", "dr": "drive", "ln": "lane", "pl": "place", "sq": "square",
    "hwy": "highway", "pkwy": "parkway", "ct": "court", "cres": "crescent",
}


def has_cjk(text: str) -> bool:
    return _CJK_CHAR.search(text) is not None


def _unaccent(text: str) -> str:
    """Latin letters without their diacritics (ö → o, é → e); other scripts unchanged."""
    out = []
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch):
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def fold(text: str) -> str:
    """Text as compared: NFKC, case-folded, diacritics dropped, punctuation as single spaces,
    abbreviations expanded; Chinese characters kept."""
    text = _unaccent(unicodedata.normalize("NFKC", text or "").casefold())
    text = _NOT_WORD.sub(" ", text.replace("_", " "))
    words = [ABBREVIATIONS.get(w, w) for w in text.split()]
    return " ".join(words)


@lru_cache(maxsize=4096)
def _pinyin(run: str) -> str:
    # imported on the first Chinese text, not with the module: pypinyin reads its 2.5 MB
    # phrase table on import, and every process that imports the app (each server worker,
    # each CLI command) paid for it at its start
    from pypinyin import Style, lazy_pinyin

    return "".join(lazy_pinyin(run, style=Style.NORMAL, errors="ignore"))


def search_key(text: str) -> str:
    """The trigram key: :func:`fold`, each Chinese run spelled in pinyin (separated from its
    neighbours by spaces, so ``88号`` stays apart from the street before it)."""
    folded = fold(text)
    if not has_cjk(folded):
        return folded
    spelled = CJK_RUN.sub(lambda m: f" {_pinyin(m.group())} ", folded)
    return _SPACES.sub(" ", spelled).strip()


def cjk_grams(text: str) -> list[str]:
    """The character bigrams of each Chinese run (a lone character counts as itself): the
    exact-character signal beside the pinyin key. Sorted, distinct."""
    grams: set[str] = set()
    for run in CJK_RUN.findall(unicodedata.normalize("NFKC", text or "")):
        if len(run) == 1:
            grams.add(run)
        grams.update(run[i:i + 2] for i in range(len(run) - 1))
    return sorted(grams)


def dice(a: Collection[str], b: Collection[str]) -> float:
    """Dice's coefficient of two gram sets (0 when either is empty)."""
    sa, sb = set(a), set(b)
    if not sa or not sb:
        return 0.0
    return 2 * len(sa & sb) / (len(sa) + len(sb))


def containment(part: Collection[str], whole: Collection[str]) -> float:
    """The share of ``part``'s grams found in ``whole`` (a street inside a longer query)."""
    sp = set(part)
    if not sp:
        return 0.0
    return len(sp & set(whole)) / len(sp)
