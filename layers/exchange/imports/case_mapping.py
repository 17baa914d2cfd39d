"""The mapping table of a case import: the legacy system's words → gridcore's codes.

A CSV with columns ``kind,value,code``: ``kind`` is ``category`` (→ a taxonomy key such as
``E0106``), ``department`` (→ a stored department code), ``state`` (→ ``closed``, ``voided`` or
``open``) or ``source`` (→ one of gridcore's sources). ``value`` is the file's own word, matched
exactly after trimming spaces. A file value that already is a gridcore code maps to itself, and
state words gridcore knows (``gridcore.legacy.final_state``) need no row.

Values no row covers are *unmapped*: they are listed with their counts and the first row that
has each, and the import is refused — unless the operator accepts ``--unmapped other``: the
category becomes ``E9999`` (其他), the department none, the state open, the source ``other``;
the original words are kept on each case (``origin``) and counted in the summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gridcore.intake import SOURCES
from gridcore.legacy import OPEN, gridcore_source
from layers.exchange.imports.reading import read_csv_table
from layers.exchange.imports.report import Problems

KINDS = ("category", "department", "state", "source")
STATES = ("closed", "voided", OPEN)


@dataclass
class MappingTable:
    """kind → {file value → gridcore code}."""

    table: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def get(self, kind: str) -> dict[str, str]:
        return self.table[kind]


def read_mapping(path: str | Path | None, categories: Collection[str],
                 departments: Collection[str]) -> MappingTable:
    """The mapping CSV, checked row by row (unknown kind or code, a value mapped twice)."""
    out = MappingTable()
    if path is None:
        return out
    what = f"mapping table {Path(path).name}"
    df = read_csv_table(path, what, ("kind", "value", "code"))
    problems = Problems(what)
    allowed: dict[str, Collection[str]] = {"category": categories, "department": departments,
                                           "state": STATES, "source": SOURCES}
    for i, (kind, value, code) in enumerate(zip(df["kind"].str.strip(), df["value"].str.strip(),
                                                df["code"].str.strip(), strict=True), start=1):
        if kind not in KINDS:
            problems.add(i, "kind", f"kind {kind!r} must be one of {', '.join(KINDS)}")
            continue
        if not value:
            problems.add(i, "value", "empty value")
        if code not in allowed[kind]:
            where = {"category": "not in the taxonomy", "department": "not a stored department "
                     "(import departments first)"}.get(kind, f"one of {', '.join(allowed[kind])}")
            problems.add(i, "code", f"{kind} code {code!r}: {where}")
        seen = out.table[kind]
        if value in seen and seen[value] != code:
            problems.add(i, "value", f"{kind} {value!r} is mapped twice ({seen[value]} and "
                                     f"{code})")
        seen[value] = code
    problems.raise_if_any()
    return out


@dataclass
class Mapped:
    """One column mapped: the codes (None where unmapped or empty) and what was unmapped."""

    codes: np.ndarray
    unmapped: np.ndarray  # bool per row: a non-empty value no rule covers
    counts: Counter[str]


def map_values(values: pd.Series, explicit: Mapping[str, str], known: Collection[str],
               builtin: Mapping[str, str | None] | None = None) -> Mapped:
    """Map a column of the file: the table first, then a value that is already a gridcore
    code, then the built-in words (``builtin``: value → code or None)."""
    distinct = pd.unique(values)
    lookup: dict[str, str | None] = {}
    for v in distinct:
        if v == "":
            lookup[v] = None
        elif v in explicit:
            lookup[v] = explicit[v]
        elif v in known:
            lookup[v] = v
        elif builtin is not None:
            lookup[v] = builtin.get(v)
        else:
            lookup[v] = None
    codes = values.map(lookup).to_numpy(dtype=object, copy=True)
    codes[pd.isna(codes)] = None  # (pandas maps a None to NaN)
    unmapped = (values != "").to_numpy() & pd.isna(codes)
    counts = Counter(values[unmapped].tolist()) if unmapped.any() else Counter()
    return Mapped(codes, unmapped, counts)


def state_words(values: pd.Series) -> dict[str, str | None]:
    from gridcore.legacy import final_state

    return {v: final_state(v) for v in pd.unique(values) if v}


def source_words(values: pd.Series) -> dict[str, str | None]:
    return {v: gridcore_source(v) for v in pd.unique(values) if v}


def list_unmapped(problems: Problems, kind: str, column: str, mapped: Mapped,
                  values: pd.Series) -> None:
    """One problem per unmapped value, most frequent first, with its count and first row."""
    first: dict[str, int] = {}
    for i in np.flatnonzero(mapped.unmapped):
        first.setdefault(values.iat[int(i)], int(i) + 1)
    for value, count in mapped.counts.most_common():
        problems.add(first[value], column,
                     f"unmapped {kind} {value!r}: {count} case{'s' if count > 1 else ''} (add "
                     f"a row 'kind,value,code' = '{kind},{value},…' to the mapping table, or "
                     "accept --unmapped other)")
