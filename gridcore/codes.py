"""Codes of areas, unit grids and city parts (GB/T 30428.1, GB/T 2260).

- district (区/县): 6 digits (GB/T 2260 administrative division code)
- street / town (街道/乡镇): district + 3 digits = 9
- community / village (社区/村): street + 3 digits = 12
- unit grid (单元网格): community + 3-digit serial 001–999 = 15
- city part (部件): district (county) 6 + major class 2 + minor class 2 + serial 6 = 16
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gridcore.errors import InvalidCode


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


def parent_area_code(code: str) -> str | None:
    """The code of the area above (street of a community, district of a street)."""
    level = area_level_of(code)
    parent = PARENT_LEVEL[level]
    return None if parent is None else code[: AREA_CODE_LENGTH[parent]]


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


def parse_part_code(code: str) -> PartCode:
    _digits(code, PART_CODE_LENGTH, "city part")
    serial = int(code[10:])
    if serial == 0:
        raise InvalidCode(f"city part code {code!r}: serial 000000 is not allowed",
                          code=code, reason="zero serial")
    return PartCode(code[:6], code[6:8], code[8:10], serial)


def make_part_code(county: str, class_code: str, serial: int) -> str:
    _digits(county, 6, "county (district)")
    _digits(class_code, 4, "city-part class")
    if not 1 <= serial <= 999_999:
        raise InvalidCode(f"city-part serial {serial} out of range 1–999999",
                          code=county + class_code, reason="serial out of range")
    return f"{county}{class_code}{serial:06d}"
