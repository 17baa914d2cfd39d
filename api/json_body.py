"""Request bodies as JSON, read the same way by every route that reads one itself (reports,
batch resolve): orjson, the standard library for what orjson refuses but JSON's looser
readers accept (NaN, Infinity — so that such a report gets the precise answer about its
field), and a clear 400-class error for anything else, a body nested beyond reason included
(100,000 ``[`` made the standard library raise RecursionError: a 500)."""

from __future__ import annotations

import json
from typing import Any

import orjson

from gridcore.errors import ValidationError


def parse_json(raw: bytes, what: str) -> Any:
    """The body's JSON value; ValidationError naming ``what`` the body must be."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc).lower():
            raise ValidationError("the JSON body is nested too deeply", field="body") from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ValidationError(f"the body must be JSON: {what}", field="body") from None
