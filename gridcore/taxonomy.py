"""The taxonomy of city-part (部件) and event (事件) classes, with their time limits.

Classes are data (``gridcore/data/part_classes.csv`` and ``event_classes.csv``), not code: a
city edits the CSV (or points ``GRIDCORE_TAXONOMY_DIR`` at its own copies) to add local classes.
Only 0101 上水井盖 and 0102 污水井盖 are confirmed minor codes of the standard; every other row
is this project's default and may be changed freely.

A class is named by a *category key*: ``P`` + 4-digit code for a city-part class
(``P0120`` street lamp) and ``E`` + 4-digit code for an event class (``E0103`` dirty road), since
the two tables reuse the same 4-digit codes.

What a registered case against a city part does to the part (its state until the case is
closed: 破损 damaged, 丢失 missing or 占用 occupied) is data too: ``part_case_states.csv``
names the classes whose default is not ``damaged`` (manhole covers go missing, crossings are
occupied).

Time limits are written ``30m`` (calendar minutes), ``2h`` (calendar hours, emergencies),
``5wh`` (working hours) and ``3wd`` (working days); the working calendar interprets them.
"""

from __future__ import annotations

import csv
import difflib
import io
import os.path
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from importlib import resources

from gridcore.errors import ValidationError


class CategoryKind(StrEnum):
    PART = "part"
    EVENT = "event"


class LimitUnit(StrEnum):
    CALENDAR_MINUTES = "m"
    CALENDAR_HOURS = "h"
    WORKING_HOURS = "wh"
    WORKING_DAYS = "wd"


_LIMIT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(wd|wh|m|h)\s*$")


@dataclass(frozen=True, slots=True)
class TimeLimit:
    amount: float
    unit: LimitUnit

    @classmethod
    def parse(cls, text: str) -> TimeLimit:
        match = _LIMIT_RE.match(text or "")
        if not match:
            raise ValidationError(
                f"time limit {text!r} must look like 30m, 2h, 5wh or 3wd",
                field="time limit", value=text)
        return cls(float(match.group(1)), LimitUnit(match.group(2)))

    def __str__(self) -> str:
        amount = int(self.amount) if self.amount.is_integer() else self.amount
        return f"{amount}{self.unit.value}"


class Stage(StrEnum):
    """The stages a class gives time limits for."""

    DISPATCH = "dispatch"  # register + dispatch (立案派遣)
    HANDLE = "handle"  # handling by the department (处置)
    CHECK = "check"  # on-site check by a grid worker (核查)


@dataclass(frozen=True, slots=True)
class CategoryClass:
    kind: CategoryKind
    code: str
    major: str
    minor: str
    name_zh: str
    name_en: str
    limits: dict[Stage, TimeLimit] = field(hash=False)
    dedup_radius_m: float
    register_condition: str
    close_condition: str
    # the state a registered case puts a part of this class in (parts only)
    case_state: str = "damaged"
    # never published anonymously (the Open311 public feed): surveillance cameras, gas leaks…
    sensitive: bool = False

    @property
    def key(self) -> str:
        return ("P" if self.kind is CategoryKind.PART else "E") + self.code


_COLUMNS = ["code", "major", "minor", "name_zh", "name_en", "limit_dispatch", "limit_handle",
            "limit_check", "dedup_radius_m", "register_condition", "close_condition"]


def _parse_rows(text: str, kind: CategoryKind, source: str) -> list[CategoryClass]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationError(f"{source}: missing column(s) {', '.join(missing)}",
                              file=source, missing=missing)
    out: list[CategoryClass] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        code = (row["code"] or "").strip()
        where = f"{source} line {line}"
        if len(code) != 4 or not code.isdigit():
            raise ValidationError(f"{where}: class code {code!r} must be 4 digits",
                                  file=source, line=line, field="code")
        if code[:2] != row["major"].strip() or code[2:] != row["minor"].strip():
            raise ValidationError(f"{where}: code {code} does not equal major + minor",
                                  file=source, line=line, field="code")
        if code in seen:
            raise ValidationError(f"{where}: duplicate class code {code}",
                                  file=source, line=line, field="code")
        seen.add(code)
        try:
            limits = {stage: TimeLimit.parse(row[f"limit_{stage.value}"]) for stage in Stage}
            radius = float(row["dedup_radius_m"])
        except (ValidationError, ValueError) as exc:
            raise ValidationError(f"{where}: {exc}", file=source, line=line) from exc
        out.append(CategoryClass(
            kind=kind, code=code, major=code[:2], minor=code[2:],
            name_zh=row["name_zh"].strip(), name_en=row["name_en"].strip(), limits=limits,
            dedup_radius_m=radius, register_condition=row["register_condition"].strip(),
            close_condition=row["close_condition"].strip(),
            sensitive=(row.get("sensitive") or "").strip().lower() in ("true", "yes", "1")))
    return out


CASE_STATES = ("damaged", "missing", "occupied")


def _case_states(text: str, source: str) -> dict[str, str]:
    """``part_case_states.csv``: class code → the state a registered case sets."""
    out: dict[str, str] = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        state = (row.get("case_state") or "").strip()
        if state not in CASE_STATES:
            raise ValidationError(f"{source} line {line}: case_state {state!r} must be one of "
                                  f"{', '.join(CASE_STATES)}", file=source, line=line,
                                  field="case_state")
        out[(row.get("code") or "").strip()] = state
    return out


class Taxonomy:
    """All classes, addressable by category key (``P0120``) or by (kind, code)."""

    def __init__(self, classes: list[CategoryClass]) -> None:
        self._by_key = {c.key: c for c in classes}

    @classmethod
    def from_csv_text(cls, parts_csv: str, events_csv: str,
                      case_states_csv: str = "") -> Taxonomy:
        states = _case_states(case_states_csv, "part_case_states.csv")
        parts = [replace(c, case_state=states.get(c.code, c.case_state))
                 for c in _parse_rows(parts_csv, CategoryKind.PART, "part_classes.csv")]
        return cls(parts + _parse_rows(events_csv, CategoryKind.EVENT, "event_classes.csv"))

    @classmethod
    def default(cls) -> Taxonomy:
        data = resources.files("gridcore") / "data"
        return cls.from_csv_text((data / "part_classes.csv").read_text("utf-8"),
                                 (data / "event_classes.csv").read_text("utf-8"),
                                 (data / "part_case_states.csv").read_text("utf-8"))

    def __iter__(self) -> Iterator[CategoryClass]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def get(self, key: str) -> CategoryClass:
        try:
            return self._by_key[key]
        except KeyError:
            hint = ""
            if isinstance(key, str) and len(key) == 4 and key.isdigit():
                hint = f" (write P{key} for a city-part class or E{key} for an event class)"
            closest = self.closest(key) if isinstance(key, str) else []
            if closest:
                hint += "; closest: " + ", ".join(f"{c.key} {c.name_zh} ({c.name_en})"
                                                  for c in closest)
            raise ValidationError(
                f"unknown category {key!r}{hint}", field="category", value=key,
                closest=[{"key": c.key, "name_zh": c.name_zh, "name_en": c.name_en}
                         for c in closest]) from None

    def closest(self, text: str, n: int = 5) -> list[CategoryClass]:
        """The classes a mistyped or half-remembered category most likely meant: by key
        (``P0121`` → ``P0120``…), by a bare code (``0120`` → ``P0120``, ``E0120``), or by
        a word of the name in either language (``lamp``, ``井盖``)."""
        wanted = text.strip().upper()
        if not wanted:
            return []
        scored: list[tuple[float, str]] = []
        for c in self:
            names = (c.name_zh.upper(), c.name_en.upper())
            # a longer shared start weighs: P0121 is nearer P0120 than P0101
            prefix = len(os.path.commonprefix([wanted, c.key]))
            score = difflib.SequenceMatcher(None, wanted, c.key).ratio() + prefix / 100
            if wanted == c.code or wanted in names or any(wanted in name for name in names):
                score = max(score, 1.0 + len(wanted) / 100)  # a whole word or code: first
            else:
                score = max(score, *(difflib.SequenceMatcher(None, wanted, name).ratio()
                                     for name in names))
            if score >= 0.6:
                scored.append((score, c.key))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [self._by_key[key] for _, key in scored[:n]]

    def limit(self, key: str, stage: Stage) -> TimeLimit:
        """The time limit of a class's stage (``P0120``, handle → ``2wd``)."""
        return self.get(key).limits[stage]

    def part_class(self, code: str) -> CategoryClass:
        return self.get("P" + code)

    def parts(self) -> list[CategoryClass]:
        return [c for c in self if c.kind is CategoryKind.PART]

    def events(self) -> list[CategoryClass]:
        return [c for c in self if c.kind is CategoryKind.EVENT]


def is_class_prefix(value: str) -> bool:
    """A category key or a prefix of one: ``P``, ``E01``, ``P0120`` (subscriptions and
    supervision policies name classes this way)."""
    return value[:1] in ("P", "E") and len(value) <= 5 and (value[1:] == "" or
                                                            value[1:].isdigit())


@lru_cache(maxsize=1)
def sensitive_classes() -> tuple[str, ...]:
    """The keys of the default taxonomy's classes marked sensitive."""
    return tuple(sorted(c.key for c in default_taxonomy() if c.sensitive))


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    """The package's taxonomy, read once per process (intake asks it on every report)."""
    return Taxonomy.default()
