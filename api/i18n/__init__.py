"""The message catalogue (消息目录): every word a page or an error shows, Chinese first.

One catalogue serves the server (problem+json titles, server-rendered pages) and the browser
pages (fetched as JSON from ``/i18n/{lang}.json``), so a word is translated once. Messages live
in ``api/i18n/messages/<lang>/<namespace>.json`` — one flat JSON object per namespace (``common``,
``map``, ``desk``, ``field``, ``health``, ``problem``…); a message's key is
``<namespace>.<key>``. A page or feature adds its own namespace file in every language; the
unit test ``tests/unit/test_i18n_catalogue.py`` holds the languages to the same keys and the
same ``{placeholders}``.

Languages: ``zh-CN`` (the default: the users work in Chinese) and ``en``. The caller's language
is, in order: ``?lang=``, the ``gridcore_lang`` cookie (set by the pages' language switch), the
``Accept-Language`` header (negotiated with Babel), else ``zh-CN``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from babel import Locale, UnknownLocaleError, negotiate_locale

log = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
# Plural variants of a message: ``time.days@one`` beside ``time.days`` (see plural_category).
PLURAL_MARK = "@"
COOKIE = "gridcore_lang"
# Babel speaks underscores (zh_CN); the web speaks hyphens (zh-CN).
_BABEL = {lang: lang.replace("-", "_") for lang in LANGUAGES}


class _Missing(dict[str, Any]):
    """Format arguments that leave an unknown ``{name}`` visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Every message of one language, keyed ``namespace.key``."""
    if lang not in LANGUAGES:
        raise KeyError(f"no catalogue for language {lang!r}")
    messages: dict[str, str] = {}
    folder = resources.files("api.i18n").joinpath("messages", lang)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        namespace = entry.name[: -len(".json")]
        data = json.loads(entry.read_text("utf-8"))
        for key, text in data.items():
            if not isinstance(text, str):
                raise ValueError(f"{lang}/{entry.name}: message {key!r} is not a string")
            messages[f"{namespace}.{key}"] = text
    return messages


def namespaces(lang: str) -> set[str]:
    return {key.split(".", 1)[0] for key in catalogue(lang)}


def messages_for(lang: str, wanted: Iterable[str] | None = None) -> dict[str, str]:
    """The messages of some namespaces (all without ``wanted``), as the pages fetch them."""
    everything = catalogue(lang)
    if wanted is None:
        return dict(everything)
    prefixes = tuple(f"{ns}." for ns in wanted)
    return {k: v for k, v in everything.items() if k.startswith(prefixes)}


@cache
def etag(lang: str) -> str:
    body = json.dumps(catalogue(lang), sort_keys=True, ensure_ascii=False).encode()
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def translate(lang: str, key: str, **values: Any) -> str:
    """The message ``key`` in ``lang`` with ``{placeholders}`` filled in; falls back to the
    default language, then to the key itself (logged: a missing message is a defect)."""
    if lang not in LANGUAGES or key not in catalogue(lang):
        lang = DEFAULT_LANGUAGE
    messages = catalogue(lang)
    text = messages.get(key)
    if text is None:
        log.warning("message %r is missing from the catalogue", key)
        return key
    if values:
        category = plural_category(lang, values)
        if category is not None:
            text = messages.get(f"{key}{PLURAL_MARK}{category}", text)
    return text.format_map(_Missing(values)) if values else text


def as_label(lang: str, text: str) -> str:
    """``text`` standing alone (a heading, a choice in a list): English begins it with a
    capital; the catalogue keeps lower case for the same words inside a sentence (the
    pages' script does the same, ``asLabel`` in static/common/ui.js)."""
    return text[:1].upper() + text[1:] if lang == "en" else text


def plural_category(lang: str, values: Mapping[str, Any]) -> str | None:
    """The CLDR plural category (``one``, ``other``…) of a message's count, or None.

    A message whose words agree with a number ("1 day" / "3 days") names that number ``{n}``
    (or ``{count}``) and may carry variants keyed ``<key>@<category>`` in languages that need
    them (English: ``@one``); Chinese has one form and needs none. The browser does the same with
    ``Intl.PluralRules`` (api/static/i18n.js)."""
    count = values.get("n", values.get("count"))
    if isinstance(count, bool) or count is None:
        return None
    try:
        number = float(count)
    except (TypeError, ValueError):
        return None
    if number.is_integer():
        number = int(number)
    return str(Locale.parse(_BABEL[lang]).plural_form(number))


def supported(lang: str | None) -> str | None:
    """``lang`` as one of ``LANGUAGES`` (``zh``, ``zh-Hans``, ``zh_cn``, ``en-GB``… accepted),
    or None."""
    if not lang:
        return None
    wanted = lang.strip().replace("_", "-")
    for known in LANGUAGES:
        if wanted.lower() == known.lower():
            return known
    try:
        locale = Locale.parse(wanted, sep="-")
    except (ValueError, UnknownLocaleError):
        return None
    for known in LANGUAGES:
        if locale.language == Locale.parse(_BABEL[known]).language:
            return known
    return None


def from_accept_language(header: str | None) -> str | None:
    """The best of ``LANGUAGES`` for an ``Accept-Language`` header (q-values honoured)."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    preferred = [tag.replace("-", "_") for _, _, tag in sorted(ranked)]
    # Babel matches zh_Hans / zh_TW / en_US … to the nearest of the languages we have.
    match = negotiate_locale(preferred, list(_BABEL.values()), aliases={"zh": "zh_CN"})
    if match is None:
        for tag in preferred:
            found = supported(tag)
            if found:
                return found
        return None
    return next(lang for lang, babel in _BABEL.items() if babel == match)


def negotiate(query: Mapping[str, str], cookies: Mapping[str, str],
              accept_language: str | None) -> str:
    """The caller's language: ``?lang=``, then the cookie, then ``Accept-Language``."""
    return (supported(query.get("lang")) or supported(cookies.get(COOKIE))
            or from_accept_language(accept_language) or DEFAULT_LANGUAGE)
