"""The nearest grid within the snap distance, from the bucket raster's own segment lists.

A point outside every grid snaps to the nearest grid within ``snap_m`` (GPS error). Its
distance to a grid is the distance to the nearest of the grid's ring segments, and every
segment within ``snap_m`` of the point touches an edge bucket at most ``reach`` buckets away
(``spatial.bucket_raster.reach_of``). So the search reads those buckets' segment lists and
measures point-to-segment distances in numpy — the arithmetic of GEOS's
``Distance::pointToSegment``, operation for operation (a segment may run the other way round
than in the stored ring, which can change the last bit of a perpendicular distance), so that
distances, the snap threshold and ties come out as ``shapely.distance`` /
``geopandas.sjoin_nearest`` have them — instead of
asking an STRtree for whole polygons and measuring every vertex of each (a census tract along
the coast has thousands).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from spatial.bucket_raster import EDGE0, BucketFrame, BucketRaster

MAX_WINDOW = 400  # buckets per point; beyond, the caller uses its STRtree
_CHUNK = 20_000  # points per round, to bound the (points × window) temporaries
_NO_GRID = np.iinfo(np.int32).max


@dataclass(frozen=True, slots=True)
class SegmentIndex:
    """What the search reads: the bucket raster with its segment lists, where it lies, the
    window of buckets around a point's own, and the metric (metres per degree)."""

    buckets: BucketRaster
    frame: BucketFrame
    window: NDArray[np.int64]  # (drow, dcol) of the buckets to read around a point's own
    kx: float
    ky: float

    @property
    def usable(self) -> bool:
        return 0 < len(self.window) <= MAX_WINDOW


def point_to_segment(px: NDArray[np.float64], py: NDArray[np.float64],
                     ax: NDArray[np.float64], ay: NDArray[np.float64],
                     bx: NDArray[np.float64], by: NDArray[np.float64]) -> NDArray[np.float64]:
    """GEOS's ``Distance::pointToSegment``, vectorised, in the same order of operations."""
    dx, dy = bx - ax, by - ay
    len2 = dx * dx + dy * dy
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ((px - ax) * dx + (py - ay) * dy) / len2
        s = ((ay - py) * dx - (ax - px) * dy) / len2
        line = np.abs(s) * np.sqrt(len2)
    to_a = np.sqrt((ax - px) * (ax - px) + (ay - py) * (ay - py))
    to_b = np.sqrt((bx - px) * (bx - px) + (by - py) * (by - py))
    point = (ax == bx) & (ay == by)
    return np.where(point | (r <= 0.0), to_a, np.where(r >= 1.0, to_b, line))


def nearest_within(index: SegmentIndex, lon: NDArray[np.float64], lat: NDArray[np.float64],
                   within: float) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """For each point: the nearest grid (rank; the lowest among equally near ones) within
    ``within`` metres and its distance, or (−1, NaN)."""
    near = np.full(len(lon), -1, dtype=np.int32)
    dist = np.full(len(lon), np.nan)
    for start in range(0, len(lon), _CHUNK):
        part = slice(start, start + _CHUNK)
        near[part], dist[part] = _chunk(index, lon[part], lat[part], within)
    return near, dist


def _chunk(ix: SegmentIndex, lon: NDArray[np.float64], lat: NDArray[np.float64],
           within: float) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    k = len(lon)
    near = np.full(k, -1, dtype=np.int32)
    dist = np.full(k, np.nan)
    f, b = ix.frame, ix.buckets
    col = np.clip((lon - f.x0) * f.ix, 0.0, f.nx - 1).astype(np.intp)
    row = np.clip((lat - f.y0) * f.iy, 0.0, f.ny - 1).astype(np.intp)
    rows = row[:, None] + ix.window[None, :, 0]
    cols = col[:, None] + ix.window[None, :, 1]
    inside = (rows >= 0) & (rows < f.ny) & (cols >= 0) & (cols < f.nx)
    value = np.where(inside, b.raster[np.clip(rows, 0, f.ny - 1) * f.nx
                                      + np.clip(cols, 0, f.nx - 1)], 0)
    who, _ = np.nonzero(value <= EDGE0)
    bucket = EDGE0 - value[value <= EDGE0]
    first = b.seg_off[bucket]
    count = b.seg_off[bucket + 1] - first
    total = int(count.sum())
    if not total:
        return near, dist
    point = np.repeat(who, count)
    begin = np.repeat(np.cumsum(count) - count, count)
    seg = b.seg_ids[np.repeat(first, count) + (np.arange(total) - begin)]
    xy = b.seg_xy[seg]
    d = point_to_segment(lon[point] * ix.kx, lat[point] * ix.ky, xy[:, 0] * ix.kx,
                         xy[:, 1] * ix.ky, xy[:, 2] * ix.kx, xy[:, 3] * ix.ky)
    keep = d <= within
    point, seg, d = point[keep], seg[keep], d[keep]
    if not len(point):
        return near, dist
    least = np.full(k, np.inf)
    np.minimum.at(least, point, d)
    tie = d == least[point]
    best = np.full(k, _NO_GRID, dtype=np.int64)
    np.minimum.at(best, point[tie], b.seg_owner[seg[tie]])
    found = best < _NO_GRID
    near[found] = best[found]
    dist[found] = least[found]
    return near, dist
