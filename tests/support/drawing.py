"""A small drawing scene in metres around central Helsinki: two communities and a line network
(a sliver road, a road crossing the community boundary, a dangle, a road far outside)."""

from __future__ import annotations

import math

import geopandas as gpd
from shapely.geometry import LineString, box

LON0, LAT0 = 24.94, 60.17
KX = 111_320.0 * math.cos(math.radians(LAT0))
KY = 110_574.0


def deg(x_m: float, y_m: float) -> tuple[float, float]:
    """A point x_m east / y_m north of the origin, in WGS 84."""
    return LON0 + x_m / KX, LAT0 + y_m / KY


def rect(x0: float, y0: float, x1: float, y1: float):  # type: ignore[no-untyped-def]
    return box(*deg(x0, y0), *deg(x1, y1))


def line(*points_m: tuple[float, float]) -> LineString:
    return LineString([deg(x, y) for x, y in points_m])


# Community A: 300 m × 200 m. A road at x = 290 cuts off a 10 m × 200 m sliver (2,000 m²,
# below the 2,500 m² minimum) that must merge back; the remaining 58,000 m² block is far above
# the 20,000 m² maximum and must split. Community B, east of A, 200 m × 100 m, is crossed by
# a road that enters from A: the community boundary cuts that block. A dead-end road (a
# dangle) inside B must not create anything.
COMMUNITIES = gpd.GeoDataFrame(
    {"code": ["990101001001", "990101001002"]},
    geometry=[rect(0, 0, 300, 200), rect(300, 0, 500, 100)], crs=4326)
NETWORK = gpd.GeoSeries([
    line((290, -20), (290, 220)),          # sliver road in A
    line((250, 50), (520, 50)),            # crosses A's east boundary into B, exits B
    line((400, 50), (400, 80)),            # dangle in B
    line((-50, 300), (600, 300)),          # far outside both
], crs=4326)
