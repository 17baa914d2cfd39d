"""What resolving a location yields: the grid, its administrative hierarchy and the party
responsible for a problem there. ``spatial`` and ``layers`` produce it; ``api``, the case
intake and the command line consume it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AreaRef:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class GridHit:
    """The grid a point falls in (or was snapped to)."""

    grid_id: int  # the unit_grid row (a specific generation of the grid)
    grid_code: str
    snapped: bool = False  # True when outside every grid but within the snap tolerance
    distance_m: float = 0.0  # distance to the grid when snapped (or nearest, when outside)


@dataclass(frozen=True, slots=True)
class ResponsibleParty:
    department_code: str | None
    department_name: str | None
    rule: str  # human-readable reason naming the rule that matched (or why none did)
    worker_codes: tuple[str, ...] = ()
    # What decided it, for pages that explain it in the reader's language:
    # "part-maintenance" | "part-owner" | "rule" | "none", and the dispatch rule's id.
    source: str = "none"
    rule_id: int | None = None


@dataclass(frozen=True, slots=True)
class LinkedPart:
    code: str
    class_code: str
    distance_m: float
    maintenance_dept: str | None
    owner_dept: str | None


@dataclass(frozen=True, slots=True)
class Resolution:
    lon: float  # WGS 84, after datum conversion
    lat: float
    inside: bool  # covered by a grid; a snapped point is not inside (``grid.snapped``)
    grid: GridHit | None
    community: AreaRef | None
    street: AreaRef | None
    district: AreaRef | None
    h3: str
    responsible: ResponsibleParty | None
    linked_part: LinkedPart | None
    reason: str  # one sentence a dispatcher can read: how the answer was found
    nearest_grid: GridHit | None = None  # when outside: the nearest grid and distance
    grid_version: int = 0
    extras: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        plain: dict[str, object] = _plain(self)
        return plain


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` without its generic deep copy (a third of the cost of turning a
    resolution into the intake document, on every report); scalars, the most common leaves,
    are recognised by their exact type first."""
    if type(value) in _SCALARS:
        return value
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return {name: _plain(getattr(value, name)) for name in fields}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value
