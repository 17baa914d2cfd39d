"""A request's validation errors (pydantic's) in the caller's language.

FastAPI's validation errors carry an English sentence per field ("Field required", "Input
should be greater than or equal to -90"). The pages and the phone show a refusal's detail to
people who may read only Chinese; this module words each error from its pydantic *type* and
context through the catalogue (``problem_detail.invalid_<type>``) and names the field as the
forms do (``problem_field.<name>``). An error of a type the catalogue has no words for (a
validator's own message) keeps the whole detail in English: a sentence half in one language
and half in the other helps nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api import i18n

# pydantic error types worded alike (their message depends on the same context)
_ALIASES = {"int_type": "int_parsing", "int_from_float": "int_parsing",
            "float_type": "float_parsing", "bool_type": "bool_parsing",
            "uuid_type": "uuid_parsing", "datetime_type": "datetime_parsing",
            "datetime_from_date_parsing": "datetime_parsing", "date_type": "date_parsing",
            "date_from_datetime_parsing": "date_parsing", "dict_type": "model_type",
            "model_attributes_type": "model_type", "enum": "literal_error",
            "finite_number": "float_parsing"}


def _field(names: dict[str, str], loc: Sequence[Any]) -> str:
    path = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    if not path:
        return names.get("problem_field.request", "request")
    last = next((p for p in reversed(path) if not p.isdigit()), path[-1])
    return names.get(f"problem_field.{last}", ".".join(path))


def localised(lang: str, errors: Sequence[dict[str, Any]]) -> list[str] | None:
    """One sentence per error in ``lang``, or None when one of them has no words there."""
    names = i18n.catalogue(lang)
    out = []
    for err in errors:
        kind = str(err.get("type", ""))
        key = f"problem_detail.invalid_{_ALIASES.get(kind, kind)}"
        if key not in names:
            return None
        ctx = {k: (", ".join(map(str, v)) if isinstance(v, list | tuple) else v)
               for k, v in (err.get("ctx") or {}).items()}
        if "expected" in ctx:  # pydantic's "'a', 'b' or 'c'"
            ctx["expected"] = str(ctx["expected"]).replace(" or ", names.get(
                "problem_detail.or", " or "))
        try:
            reason = i18n.translate(lang, key, **ctx)
        except (KeyError, IndexError, ValueError):
            return None
        colon = "：" if lang == "zh-CN" else ": "  # punctuation, not words: no message
        out.append(f"{_field(names, err.get('loc') or ())}{colon}{reason}")
    return out
