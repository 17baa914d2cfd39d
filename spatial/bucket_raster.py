"""The bucket raster behind :class:`spatial.locator.GridLocator` (网格定位索引).

A uniform lon/lat raster of ~10 m buckets over the grids' bounding box. Every bucket holds one
``int32``:

- ``≥ 0``: the bucket's closed square lies wholly inside that grid (its rank in code order);
- :data:`NEAR` (−1): wholly outside every grid, but possibly within the snap distance of one;
- :data:`FAR` (−2): wholly outside every grid and farther than the snap distance from all;
- ``≤ EDGE0`` (−3): a grid edge touches the bucket: ``EDGE0 - b`` points to the bucket's
  candidate list ``cand[off[b]:off[b + 1]]`` (grid ranks, ascending), ``closed[b]`` saying
  whether the candidates cover the whole bucket (only shared edges run through it).

Buckets are classified without per-bucket geometry work: edge buckets by a vectorised
supercover walk of every ring segment (with a margin far above float rounding), the rest by
labelling the 4-connected components of edge-free buckets (scipy.ndimage) and testing one centre
per component; NEAR is a square dilation of the edge buckets by the snap distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import NDArray

EPS = 1e-6  # bucket units; float error of the bucket arithmetic is ~1e-12
NEAR = -1
FAR = -2
EDGE0 = -3


@dataclass(frozen=True, slots=True)
class BucketFrame:
    """Where the raster lies: origin, inverse bucket size (per degree) and shape."""

    x0: float
    y0: float
    ix: float
    iy: float
    nx: int
    ny: int


@dataclass(slots=True)
class BucketRaster:
    raster: NDArray[np.int32]
    off: NDArray[np.int64]
    cand: NDArray[np.int32]
    closed: NDArray[np.bool_]
    # Every ring segment: (x0, y0, x1, y1) in lon/lat, its grid on the left; its grid's rank.
    seg_xy: NDArray[np.float64]
    seg_owner: NDArray[np.int32]
    # The segments touching edge bucket b: ``seg_ids[seg_off[b]:seg_off[b + 1]]``.
    seg_off: NDArray[np.int64]
    seg_ids: NDArray[np.int32]
    # Edge bucket b crossed by one straight piece of edge and holding no vertex: ``simple[b]``
    # is that segment, oriented with the bucket's first candidate on its left and the second
    # (or no grid) on its right; −1 for the other edge buckets.
    simple: NDArray[np.int32]
    edge_buckets: int
    far_buckets: int
    # Edge bucket b holding one vertex V of an edge between two grids, and nothing else: the
    # segments (A→V, V→B) of its first candidate (interior on their left), −1 for the others;
    # ``corner_turn[b]`` +1 when the edge turns left at V (the first candidate's side is the
    # wedge left of both), −1 when it turns right (left of either).
    corner: NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, 2), np.int32))
    corner_turn: NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8))


@dataclass(frozen=True, slots=True)
class _Segments:
    xy: NDArray[np.float64]  # (m, 4): x0, y0, x1, y1 in lon/lat, interiors on the left
    owner: NDArray[np.int64]  # grid rank; ascending, as the grids come in code order
    open: NDArray[np.bool_]  # no reversed twin: on the coverage's outer boundary


def _segments(geoms: NDArray[np.object_]) -> _Segments:
    # Rings oriented consistently (exteriors CCW, holes CW): every grid's interior lies on the
    # left of its segments, and an edge shared by two neighbours appears once in each
    # direction.
    # pandas and scipy are imported where a raster is built, not with the module: every server
    # process imports the locator, and one that never locates a point never builds one.
    import pandas as pd

    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(shapely.orient_polygons(parts), return_index=True)
    xy, ring_idx = shapely.get_coordinates(rings, return_index=True)
    same = ring_idx[:-1] == ring_idx[1:]
    # Vertices as ids (hashing complex numbers: far faster than sorting 32-byte records),
    # segments as (from, to) id pairs; a segment is open when no (to, from) exists.
    vid, uniq = pd.factorize(xy[:, 0] + 1j * xy[:, 1])
    nv = np.int64(len(uniq))
    frm, to = vid[:-1][same].astype(np.int64), vid[1:][same].astype(np.int64)
    seg_open = ~pd.Index(to * nv + frm).isin(frm * nv + to)
    owner = part_owner[ring_part[ring_idx[:-1][same]]].astype(np.int64)
    return _Segments(np.column_stack((xy[:-1][same], xy[1:][same])), owner,
                     np.asarray(seg_open, dtype=bool))


def _segment_keys(seg: _Segments, frame: BucketFrame) -> NDArray[np.int64]:
    """Keys ``((bucket * m + segment) << 1) | vertex`` for every bucket whose closed square a
    segment touches (a supercover walk with a margin); ``vertex`` marks the buckets that
    hold one of its end points (within the margin)."""
    m = len(seg.owner)
    ax = (seg.xy[:, 0] - frame.x0) * frame.ix
    ay = (seg.xy[:, 1] - frame.y0) * frame.iy
    bx = (seg.xy[:, 2] - frame.x0) * frame.ix
    by = (seg.xy[:, 3] - frame.y0) * frame.iy
    ids = np.arange(m, dtype=np.int64)
    keys: list[NDArray[np.int64]] = []

    def add(cx: NDArray[np.float64], cy: NDArray[np.float64], s: NDArray[np.int64],
            vertex: int) -> None:
        cell = cy.astype(np.int64) * frame.nx + cx.astype(np.int64)
        keys.append(((cell * m + s) << 1) | vertex)

    # Both ends of every segment: every bucket within the margin of the vertex (one bucket
    # unless the vertex lies within the margin of a bucket line: then up to four).
    for (px, py) in ((ax, ay), (bx, by)):
        x_lo, x_hi = np.floor(px - EPS), np.floor(px + EPS)
        y_lo, y_hi = np.floor(py - EPS), np.floor(py + EPS)
        add(x_lo, y_lo, ids, 1)
        k = np.flatnonzero((x_lo != x_hi) | (y_lo != y_hi))
        for cx, cy in ((x_hi, y_lo), (x_lo, y_hi), (x_hi, y_hi)):
            add(cx[k], cy[k], ids[k], 1)
    # Crossings of the vertical bucket lines x = k (strictly between the endpoints), then of
    # the horizontal ones: the buckets on both sides of each crossing.
    for (pa, qa, pb, qb, vertical) in ((ax, ay, bx, by, True), (ay, ax, by, bx, False)):
        lo, hi = np.minimum(pa, pb), np.maximum(pa, pb)
        first = np.floor(lo).astype(np.int64) + 1
        count = np.maximum(np.ceil(hi).astype(np.int64) - first, 0)
        total = int(count.sum())
        if total == 0:
            continue
        s = np.repeat(ids, count)
        start = np.repeat(np.cumsum(count) - count, count)
        line = (first[s] + (np.arange(total) - start)).astype(np.float64)
        t = (line - pa[s]) / (pb[s] - pa[s])
        q = qa[s] + t * (qb[s] - qa[s])
        del t, start
        q_lo, q_hi = np.floor(q - EPS), np.floor(q + EPS)
        near = np.flatnonzero(q_lo != q_hi)  # rare: crossing within the margin
        for side in (line - 1.0, line):
            if vertical:
                add(side, q_lo, s, 0)
                add(side[near], q_hi[near], s[near], 0)
            else:
                add(q_lo, side, s, 0)
                add(q_hi[near], side[near], s[near], 0)
    return np.concatenate(keys)


def _first_of_runs(values: NDArray[np.int64]) -> NDArray[np.intp]:
    return np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))


def _simple(seg: _Segments, first: NDArray[np.intp], useg: NDArray[np.int64],
            has_vertex: NDArray[np.bool_], ncand: NDArray[np.int64]) -> NDArray[np.int32]:
    """Edge buckets crossed by exactly one segment and its twin (or one open segment) and
    holding no vertex: the segment splits the bucket in two, so which side of it a point
    lies on decides its grid. Returns ``simple`` of :class:`BucketRaster`."""
    nseg = np.diff(np.append(first, len(useg)))
    s0 = useg[first]  # the lowest segment id = the lowest grid rank of the bucket
    one = (nseg == 1) & (ncand == 1) & seg.open[s0]
    two = (nseg == 2) & (ncand == 2)
    s1 = useg[np.minimum(first + 1, len(useg) - 1)]
    # the second segment must be the first one reversed, bit for bit
    two &= (seg.xy[s0] == seg.xy[s1][:, [2, 3, 0, 1]]).all(axis=1)
    ok = (one | two) & ~has_vertex
    return np.where(ok, s0, -1).astype(np.int32)


# Error bound of the orientation determinant (x0 − px)(y1 − py) − (y0 − py)(x1 − px) in double
# precision (Shewchuk's ccwerrboundA): beyond it its sign is exact.
ORIENT_ERR = (3.0 + 16.0 * 2.0**-53) * 2.0**-53


def _corners(seg: _Segments, first: NDArray[np.intp], useg: NDArray[np.int64],
             has_vertex: NDArray[np.bool_], ncand: NDArray[np.int64], closed: NDArray[np.bool_]
             ) -> tuple[NDArray[np.int32], NDArray[np.int8]]:
    """Edge buckets holding one vertex V where an edge between two grids bends, and no other
    segment: four segment records (A→V, V→B of the first grid and their reversed twins of the
    second). The edge splits the bucket into two wedges (A and B lie outside it, or their
    other segments would touch it too), so the sides of A→V and V→B decide the grid, as the
    side of one segment does in a straight bucket. Returns ``corner`` and ``corner_turn`` of
    :class:`BucketRaster` (buckets whose bend is too slight to sign exactly are left out)."""
    nb = len(first)
    corner = np.full((nb, 2), -1, dtype=np.int32)
    turn = np.zeros(nb, dtype=np.int8)
    nseg = np.diff(np.append(first, len(useg)))
    pick = np.flatnonzero((nseg == 4) & (ncand == 2) & closed & has_vertex)
    if not len(pick):
        return corner, turn
    four = useg[first[pick][:, None] + np.arange(4)]  # by segment id = grid rank order
    own = seg.owner[four]
    mine = own == own[:, :1]  # the first candidate's segments
    ok = mine.sum(axis=1) == 2
    pick, four, mine = pick[ok], four[ok], mine[ok]
    pair = four[mine].reshape(-1, 2)
    other = four[~mine].reshape(-1, 2)
    p, q = seg.xy[pair[:, 0]], seg.xy[pair[:, 1]]
    # which of the two ends at the start of the other: (A→V, V→B)
    p_in = (p[:, 2:] == q[:, :2]).all(axis=1)
    q_in = (q[:, 2:] == p[:, :2]).all(axis=1)
    seg_in = np.where(p_in, pair[:, 0], pair[:, 1])
    seg_out = np.where(p_in, pair[:, 1], pair[:, 0])
    a, b = seg.xy[seg_in], seg.xy[seg_out]
    # the second candidate's two segments are the same edge reversed, bit for bit
    o0, o1 = seg.xy[other[:, 0]][:, [2, 3, 0, 1]], seg.xy[other[:, 1]][:, [2, 3, 0, 1]]
    twins = (((o0 == a).all(axis=1) & (o1 == b).all(axis=1))
             | ((o0 == b).all(axis=1) & (o1 == a).all(axis=1)))
    # the bend at V: (V − A) × (B − V), its sign only where it is exact
    left = (a[:, 2] - a[:, 0]) * (b[:, 3] - b[:, 1])
    right = (a[:, 3] - a[:, 1]) * (b[:, 2] - b[:, 0])
    det = left - right
    sure = np.abs(det) > ORIENT_ERR * (np.abs(left) + np.abs(right))
    good = (p_in ^ q_in) & twins & sure
    corner[pick[good], 0] = seg_in[good]
    corner[pick[good], 1] = seg_out[good]
    turn[pick[good]] = np.where(det[good] > 0, 1, -1)
    return corner, turn


def build(geoms: NDArray[np.object_], frame: BucketFrame, reach: int,
          simple: bool = True) -> BucketRaster:
    """The raster of ``geoms`` (in code order); buckets more than ``reach`` buckets (Chebyshev)
    from every edge bucket are FAR, the other outside buckets NEAR (``reach < 0``: all FAR).
    ``simple=False``: no side-of-segment shortcut (for grids that are not a valid coverage of
    valid polygons, where "left of the edge" need not mean "inside")."""
    from scipy import ndimage

    nx, ny = frame.nx, frame.ny
    seg = _segments(geoms)
    m = len(seg.owner)
    key = _segment_keys(seg, frame)
    key.sort()  # by bucket, then segment = grid rank (hash-based unique is far slower here)
    vertex = (key & 1).astype(bool)
    key >>= 1
    cell = key // m
    first_cell = _first_of_runs(cell)
    has_vertex = np.logical_or.reduceat(vertex, first_cell)
    del vertex
    pair = _first_of_runs(key)  # distinct (bucket, segment)
    ucell, useg = cell[pair], key[pair] - cell[pair] * m
    del key, cell
    first = _first_of_runs(ucell)
    ubucket = ucell[first]
    # A bucket touched only by shared edges is wholly covered by its candidate grids.
    closed = ~np.logical_or.reduceat(seg.open[useg], first)
    # Candidates: the distinct grids per bucket, already in rank order.
    owner = seg.owner[useg]
    grid_first = _first_of_runs(ucell * len(geoms) + owner)
    cand = owner[grid_first].astype(np.int32)
    off = np.searchsorted(grid_first, np.append(first, len(useg))).astype(np.int64)
    ncand = np.diff(off)
    if simple:
        simple_idx = _simple(seg, first, useg, has_vertex, ncand)
        corner, corner_turn = _corners(seg, first, useg, has_vertex, ncand, closed)
    else:
        simple_idx = np.full(len(first), -1, dtype=np.int32)
        corner = np.full((len(first), 2), -1, dtype=np.int32)
        corner_turn = np.zeros(len(first), dtype=np.int8)
    seg_off = np.append(first, len(useg)).astype(np.int64)
    seg_ids = useg.astype(np.int32)
    del ucell, useg, owner
    edge = np.zeros(nx * ny, dtype=bool)
    edge[ubucket] = True
    edge2d = edge.reshape(ny, nx)
    labels2d, nlab = ndimage.label(~edge2d)
    # One bucket per component: the first of its bounding box's top row (a loop over
    # components, not a 16 M-element index array).
    rep = np.empty(nlab, dtype=np.int64)
    for k, (rows, cols) in enumerate(ndimage.find_objects(labels2d), start=1):
        row = labels2d[rows.start, cols]
        rep[k - 1] = rows.start * nx + cols.start + int(np.argmax(row == k))
    dx, dy = 1.0 / frame.ix, 1.0 / frame.iy
    cx = frame.x0 + (rep % nx + 0.5) * dx
    cy = frame.y0 + (rep // nx + 0.5) * dy
    lab_grid = np.full(nlab + 1, NEAR, dtype=np.int32)
    src, hit = shapely.STRtree(geoms).query(shapely.points(cx, cy), predicate="intersects")
    if len(src):
        best = np.full(nlab, np.iinfo(np.int32).max, dtype=np.int64)
        np.minimum.at(best, src, hit)
        found = best < np.iinfo(np.int32).max
        lab_grid[1:][found] = best[found]
    raster = lab_grid[labels2d.ravel()]
    del labels2d
    # Outside buckets beyond reach of every edge bucket are FAR: the nearest point of any grid
    # lies on an edge, and every edge point lies in an edge bucket.
    if reach >= 0:
        near = ndimage.maximum_filter(edge2d.view(np.uint8), size=2 * reach + 1,
                                      mode="constant", cval=0).ravel()
        raster[(raster == NEAR) & (near == 0)] = FAR
        del near
    else:
        raster[raster == NEAR] = FAR
    del edge, edge2d
    raster[ubucket] = EDGE0 - np.arange(len(ubucket), dtype=np.int32)
    return BucketRaster(raster, off, cand, closed, seg.xy, seg.owner.astype(np.int32), seg_off,
                        seg_ids, simple_idx, len(ubucket), int((raster == FAR).sum()), corner,
                        corner_turn)


def reach_of(snap_m: float, cell_m: float) -> int:
    """Buckets (Chebyshev) within which a point may lie within ``snap_m`` of an edge bucket:
    two buckets ``d`` apart hold points no closer than ``(d − 1) · cell_m``."""
    if snap_m <= 0:
        return -1
    return int(math.floor(snap_m * (1 + 1e-9) / cell_m)) + 1


def window(snap_m: float, cell_m: float) -> NDArray[np.int64]:
    """Bucket offsets (drow, dcol) that may hold a point within ``snap_m`` of a point in the
    bucket at (0, 0): their squares lie at most ``snap_m`` apart (a rounded square)."""
    reach = reach_of(snap_m, cell_m)
    step = np.arange(-reach, reach + 1)
    dr, dc = np.meshgrid(step, step, indexing="ij")
    gap_r, gap_c = np.maximum(np.abs(dr) - 1, 0), np.maximum(np.abs(dc) - 1, 0)
    limit = (snap_m * (1 + 1e-9) / cell_m) ** 2
    keep = (gap_r * gap_r + gap_c * gap_c) <= limit
    return np.column_stack((dr[keep], dc[keep])).astype(np.int64)
