"""Pieces every loader shares: column checks, duplicate codes, free attributes, staging tables."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from layers.db.copy import copy_columns
from layers.exchange.imports.report import Problems, reject_file


def require_columns(df: pd.DataFrame, what: str, fields: dict[str, str | None]) -> None:
    """``fields`` maps option name → column; a missing column refuses the whole file."""
    for option, column in fields.items():
        if column is not None and column not in df.columns:
            have = ", ".join(str(c) for c in df.columns if c != "geometry")
            raise reject_file(what, f"missing column {column!r} (--{option}); the file has: "
                                    f"{have}", column)


def text_column(df: pd.DataFrame, column: str | None, default: str = "") -> np.ndarray:
    """A column as stripped strings ('' for empty / NaN); ``default`` when absent."""
    if column is None or column not in df.columns:
        return np.full(len(df), default, dtype=object)
    series = df[column]
    values = series.astype(object).where(series.notna(), "")
    return np.array([str(v).strip() if not isinstance(v, float) or not math.isnan(v)
                     else "" for v in values.tolist()], dtype=object)


def flag_duplicates(codes: np.ndarray, field_name: str, problems: Problems) -> None:
    series = pd.Series(codes)
    dup = series.duplicated(keep=False) & (series != "")
    if not dup.any():
        return
    first: dict[str, int] = {}
    for i in np.flatnonzero(dup.to_numpy()):
        code = codes[i]
        if code in first:
            problems.add(int(i) + 1, field_name,
                         f"duplicate code {code} (already used in row {first[code]})")
        else:
            first[code] = int(i) + 1


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (datetime, date, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _as_numbers(column: pd.Series) -> pd.Series:
    """A text column whose every non-empty value is a number, as numbers (integers stay
    integers); otherwise as it is. Values with a leading zero ("007", a code) or too many
    digits for a float's exact integers keep a column text: they are identifiers."""
    text = column.astype(str).str.strip()
    filled = text[text != ""]
    if filled.empty or filled.str.match(r"^[+-]?0\d").any() or (filled.str.len() > 15).any():
        return column
    numbers = pd.to_numeric(filled, errors="coerce")
    if numbers.isna().any() or not np.isfinite(numbers.to_numpy(dtype=float)).all():
        return column
    out = pd.Series(None, index=column.index, dtype=object)
    whole = filled.str.fullmatch(r"[+-]?\d+").all()
    out[filled.index] = [int(v) if whole else float(v) for v in numbers.tolist()]
    return out


def attributes_json(df: pd.DataFrame, used: Sequence[str | None],
                    attributes_field: str | None = "attributes",
                    only: Sequence[str] | None = None) -> list[str]:
    """Free attributes (JSONB) per row: an ``attributes`` dict column when the frame has one,
    merged with every column no option mapped (so nothing of the source is lost)."""
    skip = {c for c in used if c} | {"geometry", df.geometry.name if hasattr(df, "geometry")
                                     else "geometry"}
    if attributes_field:
        skip.add(attributes_field)
    extra = list(only) if only is not None else [c for c in df.columns if c not in skip]
    base = (df[attributes_field].tolist() if attributes_field and attributes_field in df.columns
            else None)
    if not extra and base is None:
        return ["{}"] * len(df)
    frame = df[extra]
    if df.attrs.get("gridcore_untyped"):  # a CSV: every value is text
        frame = frame.apply(_as_numbers)
    records = frame.to_dict("records") if extra else [{} for _ in range(len(df))]
    out = []
    for i, rec in enumerate(records):
        merged: dict[str, Any] = {}
        if base is not None and isinstance(base[i], dict):
            merged.update(base[i])
        elif base is not None and isinstance(base[i], str) and base[i].strip():
            merged.update(json.loads(base[i]))
        for k, v in rec.items():
            v = _jsonable(v)
            if v is not None and v != "":
                merged[str(k)] = v
        out.append(json.dumps(merged, ensure_ascii=False, default=str))
    return out


def stage(conn: Connection, target: str, columns: Sequence[str], cols: list[list[str]],
          name: str) -> None:
    """A temporary copy of ``target``'s shape, loaded by COPY, dropped at commit."""
    conn.execute(text(f"CREATE TEMP TABLE {name} (LIKE {target} INCLUDING DEFAULTS) "
                      "ON COMMIT DROP"))
    n = len(cols[0]) if cols else 0
    copy_columns(conn, name, columns, lambda a, b: [c[a:b] for c in cols], n)
