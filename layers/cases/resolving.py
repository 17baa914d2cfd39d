"""What case intake and the lifecycle ask of a resolver (the :class:`Resolves` protocol), and
the re-proposal after a send-back. The app's one resolver is ``layers.grids.resolver.Resolver``
(in-memory grid locator, datum conversion, city-part link, dispatch rules with the owner
override); intake depends on the protocol only, so a city could plug in another locator.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from sqlalchemy import Connection

from gridcore.resolution import Resolution, ResponsibleParty


class Resolves(Protocol):
    def resolve(self, lon: float, lat: float, crs: str = "EPSG:4326",
                category: str | None = None, exclude: Collection[str] = (),
                conn: Connection | None = None, *, versions: Mapping[str, int] | None = None,
                part: Any = ...) -> Resolution: ...

    def part_link_params(self, lon: float, lat: float,
                         category: str | None) -> dict[str, object]: ...

    def warm(self) -> None: ...


def repropose(resolver: Resolves, lon: float, lat: float, category: str,
              exclude: Collection[str]) -> ResponsibleParty:
    """A new proposal after a send-back (退单): the same place and class, without the
    departments that refused the case (a refusing maintenance unit falls back to the owner,
    then to the area rules)."""
    res = resolver.resolve(lon, lat, "EPSG:4326", category, exclude=tuple(exclude))
    if res.responsible is None:
        return ResponsibleParty(None, None, "no responsible party could be resolved")
    return res.responsible
