"""Which current unit grid holds each imported geometry — the resolve engineer's in-memory
``spatial.locator.GridLocator`` (exact ``ST_Covers`` semantics, lowest code on shared edges),
built from the current grids as the import's own transaction sees them.

Imports follow resolve's snap rule: a point covered by no grid but within the snap distance
(``GRIDCORE_RESOLVE_SNAP_M``) of one belongs to the nearest grid (the lowest code when several
are as near) and is reported as snapped, row by row; farther out it is in no grid. Polygons are
located by a point on their surface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import Connection, text

from gridcore.settings import ResolveSettings
from layers.db.bulk import in_background
from spatial.locator import OUTSIDE, GridLocator

DEFAULT_SNAP_M = ResolveSettings().snap_m


@dataclass(frozen=True)
class GridsOf:
    """Per row: the index of its grid into ``codes`` (−1: none), whether it was snapped and
    how far (metres)."""

    codes: NDArray[np.object_]
    index: NDArray[np.int64]
    snapped: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    distance_m: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def grid_codes(self) -> NDArray[np.object_]:
        """Each row's grid code, or None."""
        out = np.full(len(self.index), None, dtype=object)
        inside = self.index >= 0
        out[inside] = self.codes[self.index[inside]]
        return out

    def snap_notes(self, snap_m: float) -> list[dict[str, object]]:
        """The snapped rows for the import report (1-based rows)."""
        return [{"row": int(i) + 1, "reason": (
            f"{self.distance_m[i]:.1f} m outside every grid, within the {snap_m:g} m snap "
            f"distance: snapped to the nearest grid {self.codes[self.index[i]]}")}
            for i in np.flatnonzero(self.snapped)]


def _locator(conn: Connection, snap_m: float) -> GridLocator | None:
    return locator_in_background(conn, snap_m, start=False)()


def locator_in_background(conn: Connection, snap_m: float, start: bool = True
                          ) -> Callable[[], GridLocator | None]:
    """Read the current grids now (in ``conn``'s transaction) and build their locator in a
    thread: returns the function that waits for it (and raises what the build raised).
    Building the raster of 60 k street-shaped grids takes ~20 s, mostly numpy, GEOS and
    pandas work that runs outside the GIL, so an import checks its rows meanwhile
    (benchmarks/README.md, import5)."""
    rows = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM unit_grid "
                             "WHERE gen_to IS NULL")).all()

    def build() -> GridLocator | None:
        return GridLocator(shapely.from_wkb([bytes(r[1]) for r in rows]),
                           [r[0] for r in rows], snap_m=snap_m) if rows else None

    if not start:
        built = build()
        return lambda: built
    return in_background(build, "grid-locator")


def grids_of_points(conn: Connection, x: NDArray[np.float64], y: NDArray[np.float64],
                    snap_m: float = DEFAULT_SNAP_M, locator: GridLocator | None = None
                    ) -> GridsOf:
    """The grid of every point (the bulk importer's form: no Python object per point);
    ``locator``: one already built from the current grids in ``conn``'s transaction."""
    n = len(x)
    if locator is None and n:
        locator = _locator(conn, snap_m)
    if locator is None:
        return GridsOf(np.empty(0, dtype=object), np.full(n, -1, dtype=np.int64),
                       np.zeros(n, dtype=bool), np.zeros(n))
    found = locator.locate_many(x, y, nearest=False, snap=snap_m > 0)
    index = found.index.astype(np.int64)
    index[index == OUTSIDE] = -1
    return GridsOf(np.asarray(locator.codes, dtype=object), index, found.snapped,
                   found.distance_m)


def grids_of(conn: Connection, geoms: NDArray[np.object_],
             snap_m: float = DEFAULT_SNAP_M) -> GridsOf:
    """The grid of every geometry (points as they are, others by a point on their surface);
    a missing geometry is in no grid."""
    geoms = np.asarray(geoms, dtype=object)
    points = geoms.copy()
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    areal = present & (shapely.get_type_id(geoms) != 0)
    if areal.any():
        points[areal] = shapely.point_on_surface(geoms[areal])
    x = np.full(len(geoms), np.nan)
    y = np.full(len(geoms), np.nan)
    x[present], y[present] = shapely.get_x(points[present]), shapely.get_y(points[present])
    return grids_of_points(conn, x, y, snap_m)
