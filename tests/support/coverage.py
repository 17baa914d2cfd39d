"""One community tiled by two unit grids, and the same with a planted overlap and gap."""

from __future__ import annotations

import geopandas as gpd
from shapely.geometry import box

# One community 0.002° × 0.001° (≈ 222 m × 111 m at the equator) tiled by two grids.
COMMUNITY = box(0, 0, 0.002, 0.001)
CLEAN = [box(0, 0, 0.001, 0.001), box(0.001, 0, 0.002, 0.001)]
# The left grid pushed 0.0001° east (overlap ≈ 11 m × 111 m); the right grid shortened at
# the top by 0.0001° (gap ≈ 111 m × 11 m).
OVERLAPPING = box(0, 0, 0.0011, 0.001)
SHORT = box(0.001, 0, 0.002, 0.0009)


def areas_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": ["310101", "310101001", "310101001001"],
                             "name": ["D", "S", "C"]},
                            geometry=[COMMUNITY] * 3, crs=4326)
