"""Per-class yes/no tables shipped as data (``gridcore/data/<name>.csv``: ``category`` and one
true/false column): which classes a device's "normal" may close, which escalate by themselves
when overdue. A bad cell names its line."""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

from gridcore.errors import ValidationError


@cache
def class_flags(name: str, column: str) -> dict[str, bool]:
    """category → flag, from ``gridcore/data/<name>.csv``."""
    text = (resources.files("gridcore") / "data" / f"{name}.csv").read_text("utf-8")
    out: dict[str, bool] = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        value = (row.get(column) or "").strip().lower()
        if value not in ("true", "false"):
            raise ValidationError(f"{name}.csv line {line}: {column} must be true or false",
                                  line=line)
        out[(row.get("category") or "").strip()] = value == "true"
    return out
