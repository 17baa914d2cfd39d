"""Codes of areas, unit grids and city parts (GB/T 30428.1, GB/T 2260).

- district (区/县): 6 digits (GB/T 2260 administrative division code)
- street / town (街道/乡镇): district + 3 digits = 9
- community / village (社区/村): street + 3 digits = 12
- unit grid (单元网格): community + 3-digit serial 001–999 = 15
- city part (部件): district (county) 6 + major class 2 + minor class 2 + serial 6 = 16

These rules live here only: the importers call the vectorised forms (:func:`part_code_rules`,
:func:`make_part_codes`) on whole columns, everything else the scalar ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from gridcore.errors import InvalidCode

if TYPE_CHECKING:
    import pandas as pd


class AreaLevel(StrEnum):
    """Levels of the administrative tree, top-down."""

    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"


AREA_CODE_LENGTH: dict[AreaLevel, int] = {
    AreaLevel.DISTRICT: 6,
    AreaLevel.STREET: 9,
    AreaLevel.COMMUNITY: 12,
}
GRID_CODE_LENGTH = 15
PART_CODE_LENGTH = 16
PART_PREFIX_LENGTH = 10  # county 6 + class 4: the serial runs per prefix
PART_SERIAL_MAX = 999_999
PART_CLASS = slice(6, 10)  # the class (major + minor) inside a part code
PARENT_LEVEL: dict[AreaLevel, AreaLevel | None] = {
    AreaLevel.DISTRICT: None,
    AreaLevel.STREET: AreaLevel.DISTRICT,
    AreaLevel.COMMUNITY: AreaLevel.STREET,
}


def _digits(code: object, length: int, what: str) -> str:
    if not isinstance(code, str):
        raise InvalidCode(f"{what} code must be a string of {length} digits, got {code!r}",
                          code=code, reason="not a string")
    if len(code) != length:
        raise InvalidCode(
            f"{what} code {code!r} has {len(code)} characters; it must have {length} digits",
            code=code, reason="wrong length")
    if not code.isascii() or not code.isdigit():
        raise InvalidCode(f"{what} code {code!r} must contain digits only",
                          code=code, reason="not digits")
    return code


def area_level_of(code: str) -> AreaLevel:
    """The level an area code belongs to, from its length."""
    for level, length in AREA_CODE_LENGTH.items():
        if isinstance(code, str) and len(code) == length:
            _digits(code, length, level.value)
            return level
    raise InvalidCode(
        f"area code {code!r} must have 6 (district), 9 (street) or 12 (community) digits",
        code=code, reason="wrong length")


def validate_area_code(code: str, level: AreaLevel, parent_code: str | None = None) -> str:
    """Check an area code for its level and, when given, that it extends its parent's code."""
    _digits(code, AREA_CODE_LENGTH[level], level.value)
    if level is not AreaLevel.DISTRICT and code.endswith("000"):
        raise InvalidCode(f"{level.value} code {code!r}: serial 000 is not allowed",
                          code=code, reason="zero serial")
    if parent_code is not None:
        parent_level = PARENT_LEVEL[level]
        if parent_level is None:
            raise InvalidCode(f"a district ({code}) has no parent area, got {parent_code!r}",
                              code=code, reason="district with parent")
        _digits(parent_code, AREA_CODE_LENGTH[parent_level], parent_level.value)
        if not code.startswith(parent_code):
            raise InvalidCode(
                f"{level.value} code {code!r} does not start with its parent "
                f"{parent_level.value} code {parent_code!r}",
                code=code, parent=parent_code, reason="prefix mismatch")
    return code


def is_area_code(code: str, level: AreaLevel) -> bool:
    """Whether ``code`` has the digits of a ``level`` code (its parent is not checked)."""
    try:
        _digits(code, AREA_CODE_LENGTH[level], level.value)
    except InvalidCode:
        return False
    return True


def validate_grid_code(code: str, community_code: str | None = None) -> str:
    """A 15-digit unit-grid code; when given, its first 12 digits must be the community."""
    _digits(code, GRID_CODE_LENGTH, "unit grid")
    if code[12:] == "000":
        raise InvalidCode(f"unit grid code {code!r}: serial 000 is not allowed (001–999)",
                          code=code, reason="zero serial")
    if community_code is not None and code[:12] != community_code:
        raise InvalidCode(
            f"unit grid code {code!r} does not start with its community code {community_code!r}",
            code=code, parent=community_code, reason="prefix mismatch")
    return code


# A district's own parent is not an area gridcore stores: the GB/T 2260 prefix of its province
# and prefecture (4 digits), under which generated district codes are numbered 01–99.
PREFECTURE_LENGTH = 4
SERIAL_DIGITS: dict[AreaLevel, int] = {AreaLevel.DISTRICT: 2, AreaLevel.STREET: 3,
                                       AreaLevel.COMMUNITY: 3}


def level_below(parent_code: str) -> AreaLevel:
    """The level of the areas directly under ``parent_code``: a 4-digit prefecture prefix →
    districts, a district → streets, a street → communities."""
    below = {PREFECTURE_LENGTH: AreaLevel.DISTRICT, 6: AreaLevel.STREET, 9: AreaLevel.COMMUNITY}
    level = below.get(len(parent_code)) if isinstance(parent_code, str) else None
    if level is None or not parent_code.isascii() or not parent_code.isdigit():
        raise InvalidCode(f"parent {parent_code!r} must be a 4-digit prefecture prefix "
                          "(districts under it), a 6-digit district (streets) or a 9-digit "
                          "street (communities)", code=parent_code, reason="bad parent")
    return level


def make_area_code(parent_code: str, serial: int) -> str:
    """The code of the ``serial``-th area under ``parent_code`` (01–99 for districts, 001–999
    below)."""
    level = level_below(parent_code)
    width = SERIAL_DIGITS[level]
    if not 1 <= serial < 10 ** width:
        raise InvalidCode(f"{parent_code} cannot hold more than {10 ** width - 1} "
                          f"{level.value}s (serial {serial} requested)", code=parent_code,
                          reason="serial out of range")
    return f"{parent_code}{serial:0{width}d}"


def make_grid_code(community_code: str, serial: int) -> str:
    validate_area_code(community_code, AreaLevel.COMMUNITY)
    if not 1 <= serial <= 999:
        raise InvalidCode(
            f"community {community_code} cannot hold more than 999 unit grids "
            f"(serial {serial} requested)", code=community_code, reason="serial out of range")
    return f"{community_code}{serial:03d}"


@dataclass(frozen=True, slots=True)
class PartCode:
    """A parsed 16-digit city-part (部件) code."""

    county: str
    major: str
    minor: str
    serial: int

    @property
    def class_code(self) -> str:
        return self.major + self.minor

    def __str__(self) -> str:
        return f"{self.county}{self.major}{self.minor}{self.serial:06d}"


def _zero_serial(code: str) -> str:
    return f"city part code {code} has serial 000000 (1–{PART_SERIAL_MAX} allowed)"


def _class_mismatch(code: str, class_code: str) -> str:
    return (f"city part code {code} holds class {code[PART_CLASS]}, but the row's class is "
            f"{class_code}")


def parse_part_code(code: str, class_code: str | None = None) -> PartCode:
    """A 16-digit city-part code; when ``class_code`` is given, the code must hold it."""
    _digits(code, PART_CODE_LENGTH, "city part")
    serial = int(code[PART_PREFIX_LENGTH:])
    if serial == 0:
        raise InvalidCode(_zero_serial(code), code=code, reason="zero serial")
    if class_code is not None and code[PART_CLASS] != class_code:
        raise InvalidCode(_class_mismatch(code, class_code), code=code, reason="class mismatch")
    return PartCode(code[:6], code[6:8], code[8:10], serial)


def part_prefix(county: str, class_code: str) -> str:
    """The first 10 digits of a part code: county (district) + class."""
    _digits(county, AREA_CODE_LENGTH[AreaLevel.DISTRICT], "county (district)")
    _digits(class_code, 4, "city-part class")
    return county + class_code


def make_part_code(county: str, class_code: str, serial: int) -> str:
    prefix = part_prefix(county, class_code)
    if not 1 <= serial <= PART_SERIAL_MAX:
        raise InvalidCode(f"city-part serial {serial} out of range 1–{PART_SERIAL_MAX}",
                          code=prefix, reason="serial out of range")
    return f"{prefix}{serial:06d}"


# -- whole columns (imports of a million parts: no Python object per row) -------------------------
RowRule = tuple[np.ndarray, Callable[[int], str]]


def part_code_rules(codes: pd.Series, classes: pd.Series, class_known: np.ndarray
                    ) -> list[RowRule]:
    """The part-code rules over a column of codes (``""``: none given), in the order they are
    checked: for each, the rows breaking it and the reason for a row — the same rules and
    words as :func:`parse_part_code`. ``classes``: each row's class code; only rows whose class
    is ``class_known`` (in the taxonomy) are compared with the class the code holds."""
    given = (codes != "").to_numpy()
    if not given.any():
        return []
    well_formed = codes.str.fullmatch(r"\d{16}").to_numpy(dtype=bool, na_value=False)
    ok = given & well_formed

    def malformed(i: int) -> str:
        try:
            _digits(codes[i], PART_CODE_LENGTH, "city part")
        except InvalidCode as exc:
            return exc.message
        return f"city part code {codes[i]!r} is malformed"  # pragma: no cover

    return [
        (given & ~well_formed, malformed),
        (ok & (codes.str[PART_PREFIX_LENGTH:] == "000000").to_numpy(),
         lambda i: _zero_serial(codes[i])),
        (ok & class_known & (codes.str[PART_CLASS] != classes).to_numpy(),
         lambda i: _class_mismatch(codes[i], classes[i])),
    ]


def make_part_codes(prefixes: Sequence[str], inverse: np.ndarray, serials: np.ndarray
                    ) -> np.ndarray:
    """Part codes as 16 ASCII bytes per row (a ``uint8`` array of shape (n, 16)): row ``i`` is
    ``prefixes[inverse[i]]`` + ``serials[i]`` in six digits, written column by column.
    Serials must lie in 1…``PART_SERIAL_MAX`` (the caller refuses the file otherwise)."""
    n = len(inverse)
    out = np.empty((n, PART_CODE_LENGTH), dtype=np.uint8)
    out[:, :PART_PREFIX_LENGTH] = np.frombuffer(
        "".join(prefixes).encode("ascii"), dtype=np.uint8).reshape(-1, PART_PREFIX_LENGTH)[inverse]
    serial = np.array(serials, dtype=np.int64)
    for pos in range(PART_CODE_LENGTH - 1, PART_PREFIX_LENGTH - 1, -1):
        out[:, pos] = 48 + serial % 10
        serial //= 10
    return out
