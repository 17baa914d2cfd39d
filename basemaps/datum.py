"""Putting WGS 84 overlays on a GCJ-02 basemap (AMap / 高德).

GCJ-02 tiles are drawn in a shifted frame (100–700 m from WGS 84 in China). Rather than warp
raster tiles, the overlays move: each vector tile is translated by the WGS 84 → GCJ-02 offset
at its centre (``spatial.crs``). The offset changes slowly — well under a metre across a z14
tile (a pixel there is ~10 m at the equator) — so one translation per tile is exact enough;
the tests measure the error against the per-vertex conversion.
"""

from __future__ import annotations

import math

import numpy as np

from spatial.crs import Shift, wgs84_to_gcj02


def tile_centre(z: int, x: int, y: int) -> tuple[float, float]:
    n = 2 ** z
    lon = (x + 0.5) / n * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / n))))
    return lon, lat


def gcj02_shift_at(lon: float, lat: float) -> Shift:
    glon, glat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    return Shift(float(glon[0]) - lon, float(glat[0]) - lat)


def gcj02_shift_at_tile(z: int, x: int, y: int) -> Shift:
    return gcj02_shift_at(*tile_centre(z, x, y))
