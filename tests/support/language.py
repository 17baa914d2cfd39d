"""The language check of a page's chrome: every visible word the page itself says (text,
placeholders, titles, labels for assistive technology) must be in the page's language.

Not chrome, so not checked: what is marked as data (``translate="no"``: names, codes, what
people wrote), text in another declared language (``lang="en"`` on the language switch's
"English"), the map's attribution (names of data sources) and the map canvas itself. Codes,
numbers, times and units are stripped before the check (``C00000012``, ``P0120``,
``2026-12-06 17:30 +08:00``, ``50 m``), and so are the product's own names (gridcore, 网格通)
the names of the basemap providers
and of standards and formats (OGC API, OpenAPI, Open311, PDF, CJ/T 292-2008).
"""

from __future__ import annotations

import re
from typing import Any

WALK = """(lang) => {
  const out = [];
  const skip = (el) => el.closest('[translate="no"], .maplibregl-ctrl-attrib, .maplibregl-canvas')
    || (el.closest('[lang]') && el.closest('[lang]').getAttribute('lang') !== lang);
  const shown = (el) => el.getClientRects().length > 0
    && getComputedStyle(el).visibility !== 'hidden' && !el.closest('[hidden]');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    const text = n.textContent.trim();
    if (!text || !el || skip(el) || ['SCRIPT', 'STYLE'].includes(el.tagName)) continue;
    if (el.tagName === 'OPTION') { if (!el.selected || !shown(el.parentElement)) continue; }
    else if (!shown(el)) continue;
    out.push(text);
  }
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label], img[alt]')) {
    if (skip(el) || !shown(el)) continue;
    for (const a of ['placeholder', 'title', 'aria-label', 'alt']) {
      const v = el.getAttribute(a);
      if (v && v.trim()) out.push(v.trim());
    }
  }
  out.push(document.title);
  return out;
}"""

_NOT_WORDS = [
    r"\b[A-Z]\d{4,}\b",  # case numbers C00000012, class keys P0120
    r"\b\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?( [+-]\d{2}:\d{2})?",  # the one time format
    r"\b\d+(\.\d+)?\s*(m|km|%)\b",  # measures
    r"\b[A-Z][A-Z0-9]*(?:[_-][A-Z0-9]+)+\b",  # department and team codes (D_GRID, T-GRID-1)
    r"\bgridcore\b", r"\bOpenStreetMap\b", r"\bMapLibre\b",
    # names of standards, the same in every language (the portal's links for developers)
    r"\bOGC API\b", r"\bOpenAPI\b", r"\bOpen311\b", r"\bAPI\b", r"\bPDF\b",
    r"\b(?:GB|CJ)/T\s*[\d.]+(?:-\d{4})?",  # the national standards cited (CJ/T 292-2008)
]
# Proper names of the product's apps, the same in every language (网格通: the phone app).
_PROPER_NAMES = re.compile(r"网格通")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def chrome_texts(page: Any, lang: str) -> list[str]:
    return list(page.evaluate(WALK, lang))


def foreign_words(page: Any, lang: str) -> list[str]:
    """The chrome's words not in ``lang``: English words on a Chinese page, Chinese
    characters on an English one."""
    found = []
    for text in chrome_texts(page, lang):
        if lang == "zh-CN":
            rest = text
            for pattern in _NOT_WORDS:
                rest = re.sub(pattern, " ", rest)
            found += [f"{w} (in {text!r})" for w in _LATIN_WORD.findall(rest)]
        elif _CJK.search(_PROPER_NAMES.sub(" ", text)):
            found.append(text)
    return found
