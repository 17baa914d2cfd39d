"""H3 cells for aggregation (every stored point gets its cell; resolution default 10).

h3 speaks (lat, lng); everything in gridcore speaks (lon, lat). This module is the only place
that calls h3 (with ``spatial.h3lattice``, which shares h3's answers among the points of one
cell in big batches), so the swapped order never leaks out. Batches use ``h3ronpy`` (Rust, a
dependency: several times faster than a per-point loop over ``h3``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import h3
import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa
from h3ronpy import cells_to_string as _cells_to_string
from h3ronpy.vector import coordinates_to_cells as _coordinates_to_cells

from gridcore.errors import ValidationError
from spatial import h3lattice

DEFAULT_RESOLUTION = 10


def check_resolution(resolution: int) -> int:
    """The resolution as an int; ValidationError unless it is an integer 0–15."""
    return _check_res(resolution)


def _check_res(resolution: int) -> int:
    if not isinstance(resolution, int | np.integer) or not 0 <= int(resolution) <= 15:
        raise ValidationError(f"H3 resolution must be an integer 0–15, got {resolution!r}",
                              field="h3_resolution")
    return int(resolution)


def cell(lon: float, lat: float, resolution: int = DEFAULT_RESOLUTION) -> str:
    """The H3 cell (hex string) of one WGS 84 point."""
    found: str = h3.latlng_to_cell(lat, lon, _check_res(resolution))
    return found


def cells(lon: np.ndarray, lat: np.ndarray, resolution: int = DEFAULT_RESOLUTION
          ) -> np.ndarray:
    """H3 cells (object array of hex strings) of WGS 84 lon/lat arrays."""
    res = _check_res(resolution)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    if len(lon) == 0:
        return np.empty(0, dtype=object)
    ints = _coordinates_to_cells(lat, lon, res)
    return np.asarray(_cells_to_string(ints).to_pylist(), dtype=object)


def centre(cell_id: str) -> tuple[float, float]:
    """(lon, lat) of a cell's centre."""
    lat, lon = h3.cell_to_latlng(cell_id)
    return lon, lat


def boundary(cell_id: str) -> list[tuple[float, float]]:
    """The cell's boundary as (lon, lat) pairs (closed ring)."""
    ring = [(lon, lat) for lat, lon in h3.cell_to_boundary(cell_id)]
    return ring + ring[:1]


# The bulk importer's name for :func:`cells` (lon, lat arrays → hex strings).
cells_of_points = cells


def cells_arrow(lon: np.ndarray, lat: np.ndarray, resolution: int = DEFAULT_RESOLUTION
                ) -> pa.Array:
    """:func:`cells` as a pyarrow string array: a million points skip a million Python str
    objects on their way to COPY (pyarrow is imported here only, on demand)."""
    import pyarrow as pa

    if len(lon) == 0:
        return pa.array(cells(lon, lat, resolution), pa.string())
    which, ints = h3lattice.cells_grouped(np.asarray(lon, dtype=np.float64),
                                          np.asarray(lat, dtype=np.float64),
                                          _check_res(resolution))
    names = pa.array(_cells_to_string(pa.array(ints))).cast(pa.string())
    return names if which is None else names.take(which)
