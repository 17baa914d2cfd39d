"""Names of indices, indicators and levels in the caller's language, from the message
catalogue (``health`` and ``eval`` namespaces). A city that adds its own indicator to a data
file without a catalogue entry still gets a name: the data file's ``name_zh`` / ``name_en``."""

from __future__ import annotations

from api import i18n


def _lookup(lang: str, key: str, zh: str = "", en: str = "") -> str:
    found = i18n.catalogue(lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE).get(key)
    if found is not None:
        return found
    return (en if lang == "en" else zh) or zh or key.rsplit(".", 1)[-1]


def index_name(lang: str, key: str, zh: str = "", en: str = "") -> str:
    """城管指数 / "city management"; ``total`` is the total score."""
    return _lookup(lang, f"health.index.{key}", zh, en)


def indicator_name(lang: str, key: str, zh: str = "", en: str = "",
                   namespace: str = "health") -> str:
    return _lookup(lang, f"{namespace}.indicator.{key}", zh, en)


def level_name(lang: str, level: str) -> str:
    return _lookup(lang, f"health.level.{level}", level, level)


def health_name(lang: str, key: str, model: object) -> str:
    """The name of ``key`` — the total, an index or an indicator of a health model."""
    for idx in getattr(model, "indices", ()):
        if idx.key == key:
            return index_name(lang, key, idx.name_zh, idx.name_en)
    for ind in getattr(model, "indicators", ()):
        if ind.key == key:
            return indicator_name(lang, key, ind.name_zh, ind.name_en)
    return index_name(lang, key)
