"""CSV cells that a spreadsheet would run as formulas (CSV injection) — pure functions.

Exports are opened in Excel or WPS by the people who asked for them; a cell beginning with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken as a formula there
(``=HYPERLINK(…)`` sends a click elsewhere, DDE runs commands). As OWASP advises, such a text
cell is written with a leading ``'``, which spreadsheets show as text and never evaluate;
numbers are left alone. :func:`restore` undoes it where gridcore reads its own CSV back (the
dispatch rules' round trip).
"""

from __future__ import annotations

from typing import Any, TypeVar

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
T = TypeVar("T")


def neutralise(value: T) -> T | str:
    """``value`` as a CSV cell that no spreadsheet evaluates."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def neutralise_row(row: dict[str, Any]) -> dict[str, Any]:
    return {key: neutralise(value) for key, value in row.items()}


def restore(value: str) -> str:
    """A cell written by :func:`neutralise`, as it was."""
    if value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value
