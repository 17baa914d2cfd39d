"""Areas and lengths in metres of WGS 84 geometries, and the degrees a distance spans.

Areas are computed in a Lambert azimuthal equal-area projection centred on the data, which is
exact for area at any size a city covers and vectorised (pyproj's Geod.geometry_area_perimeter
is exact too but loops in Python per geometry, too slow for a million rows).
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from pyproj import CRS, Transformer


def local_equal_area(lon: float, lat: float) -> CRS:
    return CRS.from_proj4(f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +ellps=WGS84 +units=m")


def to_local_metres(geoms: np.ndarray, centre: tuple[float, float] | None = None) -> np.ndarray:
    """WGS 84 geometries reprojected into a local equal-area plane in metres."""
    geoms = np.asarray(geoms, dtype=object)
    if centre is None:
        valid = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
        if len(valid) == 0:
            return geoms
        x0, y0, x1, y1 = shapely.total_bounds(valid)
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    transformer = Transformer.from_crs(4326, local_equal_area(*centre), always_xy=True)
    local: np.ndarray = shapely.transform(geoms, lambda xy: np.column_stack(
        transformer.transform(xy[:, 0], xy[:, 1])))
    return local


def areas_m2(geoms: np.ndarray) -> np.ndarray:
    """Area of each WGS 84 geometry in square metres."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0)
    areas: np.ndarray = shapely.area(to_local_metres(geoms))
    return areas


def degree_box(lat: float, radius_m: float) -> dict[str, float]:
    """Half the width and height in degrees of a box that holds the circle of ``radius_m``
    around a point at ``lat``: for a spatial index, before the distance in metres is worked out
    (intake's nearby-case search and part link).

    Width and height apart: a degree of longitude is cos(latitude) of a degree of latitude, so
    one radius in longitude degrees for both made the box twice as tall as the circle at
    Helsinki's 60° N, and intake's nearby-case search read twice the open cases it needed
    (benchmarks/README.md, "Design figures"). The width is taken at the circle's poleward edge,
    a degree of longitude is at least 111,319 m × cos(latitude) and a degree of latitude at
    least 110,574 m, so the box never cuts the circle."""
    dy = radius_m / 110_574.0
    edge = min(abs(lat) + dy, 89.9)
    return {"dx": radius_m / 111_319.0 / max(math.cos(math.radians(edge)), 0.01), "dy": dy}


def coarsen(lon: float, lat: float, metres: float) -> tuple[float, float]:
    """The centre of the cell of a ≈ ``metres`` grid that holds (lon, lat): a published
    location that tells the block, not the doorstep (the Open311 public feed). Cells are
    ``metres`` tall and as wide in metres at the cell's own latitude."""
    if metres <= 0:
        return lon, lat
    dy = metres / 111_320.0
    row = math.floor(lat / dy)
    centre_lat = (row + 0.5) * dy
    dx = metres / (111_320.0 * max(math.cos(math.radians(centre_lat)), 1e-6))
    col = math.floor(lon / dx)
    return round((col + 0.5) * dx, 7), round(centre_lat, 7)
