"""The in-memory point → unit grid locator (网格定位).

Exact: for every point the answer equals PostGIS ``ST_Covers(grid.geom, point)`` on the same
WGS 84 coordinates. Rules:

- a point covered by several grids (on an edge or vertex shared by neighbours, or in an overlap)
  resolves to the grid with the LOWEST grid code — deterministic and independent of load order;
- the outer boundary of the coverage is inside (covers, not contains);
- outside every grid: the nearest grid and the distance in metres; within ``snap_m`` (default
  30 m, GPS error) the point snaps to it and says so.

Why this structure (measured, see ``benchmarks/bench_resolve.py``): the time of a point lookup
goes into (a) finding candidates and (b) exact point-in-polygon tests. An STRtree or H3 cell
table pays a tree walk or a hash per point plus an exact test for most points; converting 1 M
coordinates to H3 cells alone costs ~0.4 s. Instead the locator rasterises the coverage once
into a uniform lon/lat bucket grid (~10 m cells, ≤ 16 M cells): a point's bucket is two
multiplications and one array read. A bucket whose closed square no grid edge touches lies
wholly inside one grid (or outside all), so its answer is stored directly; only the few percent
of points that fall in buckets crossed by an edge get the exact GEOS test, against just the
grids whose edges cross that bucket (a CSR candidate list, already in code order). Buckets are
classified without per-bucket geometry work: edge buckets by a vectorised supercover walk of
every ring segment (with a safety margin far above float rounding), the rest by labelling the
4-connected components of edge-free buckets (scipy.ndimage) and testing one centre per
component. H3 cells are still computed for every stored point (``spatial.h3cells``), for
aggregation, not for lookup.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy import ndimage

_EPS = 1e-6  # bucket units; float error of the bucket arithmetic is ~1e-12
_M_PER_DEG = 111_320.0
OUTSIDE = -1
PREPARE_MIN_VERTICES = 64


@dataclass(frozen=True, slots=True)
class Located:
    """Batch answer: ``index`` into the locator's grids (−1 outside), snapped flags, distance
    (0 inside, metres to the nearest grid otherwise) and ``nearest`` (the grid index even when
    outside beyond the snap tolerance, −1 for an empty locator)."""

    index: np.ndarray
    snapped: np.ndarray
    distance_m: np.ndarray
    nearest: np.ndarray


class GridLocator:
    """Built from grid polygons (lon/lat) and their codes; see the module docstring."""

    # Any: numpy's stubs make an ndarray a Buffer (memoryview) from Python 3.12 on only, and
    # the tree is None while there are no grids.
    _raster: Any
    _tree: Any

    def __init__(self, geoms: np.ndarray | list[Any], codes: np.ndarray | list[Any],
                 ids: np.ndarray | list[Any] | None = None, snap_m: float = 30.0,
                 cell_m: float | None = None, max_cells: int = 16_000_000) -> None:
        geoms = np.asarray(geoms, dtype=object)
        codes = np.asarray(codes, dtype=object)
        ids = np.arange(len(codes)) if ids is None else np.asarray(ids)
        order = np.argsort(codes.astype(str), kind="stable")  # rank = tie-break order
        self.geoms = geoms[order]
        self.codes = codes[order]
        self.ids = ids[order]
        self.snap_m = float(snap_m)
        self.n = len(self.codes)
        if self.n == 0:
            self._empty()
            return
        self._prepare()
        minx, miny, maxx, maxy = shapely.total_bounds(self.geoms)
        lat0 = (miny + maxy) / 2.0
        self._kx = _M_PER_DEG * math.cos(math.radians(lat0))  # metres per degree of lon
        self._ky = _M_PER_DEG
        if cell_m is None:
            area = max((maxx - minx) * self._kx * (maxy - miny) * self._ky, 1.0)
            budget = min(max(self.n * 800, 250_000), max_cells)
            cell_m = max(math.sqrt(area / budget), 0.5)
        self.cell_m = float(cell_m)
        self._dx, self._dy = cell_m / self._kx, cell_m / self._ky
        self._x0, self._y0 = minx - 2 * self._dx, miny - 2 * self._dy
        self._ix, self._iy = 1.0 / self._dx, 1.0 / self._dy
        self.nx = int(math.ceil((maxx - self._x0) * self._ix)) + 3
        self.ny = int(math.ceil((maxy - self._y0) * self._iy)) + 3
        self._build_raster()
        metric = shapely.transform(self.geoms, self._to_metric)
        self._tree_m = shapely.STRtree(metric)
        # GEOS builds an STRtree lazily on its first query, and two threads racing to build the
        # same tree corrupt the heap (pygeos #361): build it here, before any reader sees it.
        self._tree_m.query(shapely.points(0.0, 0.0))

    # -- build -----------------------------------------------------------------------------------
    def _prepare(self) -> None:
        # GEOS prepared geometries pay off only for long rings: on a ~10-vertex grid a prepared
        # covers-test measured 1.6 µs against 1.0 µs unprepared.
        big = shapely.get_num_coordinates(self.geoms) >= PREPARE_MIN_VERTICES
        shapely.prepare(self.geoms[big])
        # A GEOS prepared geometry is not safe to share between threads: concurrent predicates
        # on one corrupt the heap (reproduced with 4 threads on SF's neighbourhoods). The API
        # resolves in a thread pool and dask runs partitions in threads, so exact tests are
        # serialised when any grid is prepared; unprepared geometries stay lock-free.
        self._geos_lock: Any = threading.Lock() if big.any() else contextlib.nullcontext()

    def _empty(self) -> None:
        self.cell_m = 0.0
        self.nx = self.ny = 0
        self._raster = np.full(0, OUTSIDE, dtype=np.int32)
        self._view = memoryview(self._raster)
        self._off = np.zeros(1, dtype=np.int64)
        self._cand = np.zeros(0, dtype=np.int32)
        self._closed = np.zeros(0, dtype=bool)
        self.is_coverage = True
        self._tree = self._tree_m = None
        self._geos_lock = contextlib.nullcontext()
        self.boundary_cells = 0

    def _to_metric(self, xy: np.ndarray) -> np.ndarray:
        # Local equirectangular metres about the coverage's mid-latitude: < 0.1 % error over a
        # city, plenty for snapping and "nearest grid" distances.
        return np.column_stack((xy[:, 0] * self._kx, xy[:, 1] * self._ky))

    def _segment_cells(self) -> np.ndarray:
        """Keys ``((bucket * n + grid) << 1) | open`` for every bucket whose closed square a ring
        segment touches; ``open`` marks segments without a reversed twin in another ring, i.e.
        on the outer boundary of the coverage (or where neighbours' edges do not match)."""
        # Rings oriented consistently (exteriors CCW, holes CW): an edge shared by two
        # neighbours then appears once in each direction.
        parts, part_owner = shapely.get_parts(self.geoms, return_index=True)
        rings, ring_part = shapely.get_rings(shapely.orient_polygons(parts),
                                             return_index=True)
        xy, ring_idx = shapely.get_coordinates(rings, return_index=True)
        same = ring_idx[:-1] == ring_idx[1:]
        seg_xy = np.column_stack((xy[:-1][same], xy[1:][same]))
        twin = np.ascontiguousarray(seg_xy[:, [2, 3, 0, 1]]).view("V32").ravel()
        seg_open = ~np.isin(twin, np.ascontiguousarray(seg_xy).view("V32").ravel())
        del twin, seg_xy
        fx = (xy[:, 0] - self._x0) * self._ix
        fy = (xy[:, 1] - self._y0) * self._iy
        owner = part_owner[ring_part[ring_idx]].astype(np.int64)
        ax, ay, bx, by = fx[:-1][same], fy[:-1][same], fx[1:][same], fy[1:][same]
        seg_owner = owner[:-1][same]
        keys = []

        def add(cx: np.ndarray, cy: np.ndarray, g: np.ndarray, flag: np.ndarray) -> None:
            cell = cy.astype(np.int64) * self.nx + cx.astype(np.int64)
            keys.append(((cell * self.n + g) << 1) | flag)

        # Both ends of every segment: every bucket within the margin of the vertex (one bucket
        # unless the vertex lies within the margin of a bucket line: then up to four).
        for (px, py) in ((ax, ay), (bx, by)):
            x_lo, x_hi = np.floor(px - _EPS), np.floor(px + _EPS)
            y_lo, y_hi = np.floor(py - _EPS), np.floor(py + _EPS)
            add(x_lo, y_lo, seg_owner, seg_open)
            m = np.flatnonzero((x_lo != x_hi) | (y_lo != y_hi))
            for cx, cy in ((x_hi, y_lo), (x_lo, y_hi), (x_hi, y_hi)):
                add(cx[m], cy[m], seg_owner[m], seg_open[m])
        # Crossings of the vertical bucket lines x = k (strictly between the endpoints), then of
        # the horizontal ones: the buckets on both sides of each crossing.
        for (pa, qa, pb, qb, vertical) in ((ax, ay, bx, by, True), (ay, ax, by, bx, False)):
            lo, hi = np.minimum(pa, pb), np.maximum(pa, pb)
            first = np.floor(lo).astype(np.int64) + 1
            count = np.maximum(np.ceil(hi).astype(np.int64) - first, 0)
            total = int(count.sum())
            if total == 0:
                continue
            seg = np.repeat(np.arange(len(count)), count)
            start = np.repeat(np.cumsum(count) - count, count)
            k = (first[seg] + (np.arange(total) - start)).astype(np.float64)
            t = (k - pa[seg]) / (pb[seg] - pa[seg])
            q = qa[seg] + t * (qb[seg] - qa[seg])
            del t, start
            g, flag = seg_owner[seg], seg_open[seg]
            q_lo, q_hi = np.floor(q - _EPS), np.floor(q + _EPS)
            near = np.flatnonzero(q_lo != q_hi)  # rare: crossing within the margin
            for side in (k - 1.0, k):
                if vertical:
                    add(side, q_lo, g, flag)
                    add(side[near], q_hi[near], g[near], flag[near])
                else:
                    add(q_lo, side, g, flag)
                    add(q_hi[near], side[near], g[near], flag[near])
        return np.concatenate(keys)

    def _build_raster(self) -> None:
        key = self._segment_cells()
        key.sort()  # by bucket, then grid rank (numpy's hash-based unique is far slower here)
        flag = (key & 1).astype(np.int8)
        key >>= 1
        cell = key // self.n
        first = np.flatnonzero(np.concatenate(([True], cell[1:] != cell[:-1])))
        # A bucket touched only by shared edges is wholly covered by its candidate grids.
        self._closed = np.bitwise_or.reduceat(flag, first) == 0
        del flag, cell
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        bcell, bgrid = np.divmod(key, self.n)
        del key
        first = np.flatnonzero(np.concatenate(([True], bcell[1:] != bcell[:-1])))
        ucell = bcell[first]
        self._off = np.append(first, len(bcell)).astype(np.int64)
        self._cand = bgrid.astype(np.int32)
        self.boundary_cells = len(ucell)
        del bcell, bgrid
        edge = np.zeros(self.nx * self.ny, dtype=bool)
        edge[ucell] = True
        labels2d, nlab = ndimage.label(~edge.reshape(self.ny, self.nx))
        del edge
        # One bucket per component: the first of its bounding box's top row (a loop over
        # components, not a 16 M-element index array).
        rep = np.empty(nlab, dtype=np.int64)
        for k, (rows, cols) in enumerate(ndimage.find_objects(labels2d), start=1):
            row = labels2d[rows.start, cols]
            rep[k - 1] = rows.start * self.nx + cols.start + int(np.argmax(row == k))
        labels = labels2d.ravel()
        cx = self._x0 + (rep % self.nx + 0.5) * self._dx
        cy = self._y0 + (rep // self.nx + 0.5) * self._dy
        lab_grid = np.full(nlab + 1, OUTSIDE, dtype=np.int32)
        tree = shapely.STRtree(self.geoms)
        src, hit = tree.query(shapely.points(cx, cy), predicate="intersects")
        if len(src):
            best = np.full(nlab, np.iinfo(np.int32).max, dtype=np.int64)
            np.minimum.at(best, src, hit)
            found = best < np.iinfo(np.int32).max
            lab_grid[1:][found] = best[found]
        raster = lab_grid[labels]
        del labels
        raster[ucell] = -2 - np.arange(len(ucell), dtype=np.int32)
        self._raster = raster
        self._view = memoryview(raster)
        self._tree = tree
        # Overlapping grids (not a valid coverage) may cover an edge bucket without an edge in
        # it: then edge-bucket points ask the STRtree for every covering grid instead.
        self.is_coverage = bool(shapely.coverage_is_valid(self.geoms))
        if not self.is_coverage:
            self._closed[:] = False

    # -- queries ---------------------------------------------------------------------------------
    def locate(self, lon: float, lat: float) -> tuple[int, bool, float]:
        """One point → (grid index or −1, snapped, distance_m). Pure-Python fast path: two
        multiplications and one memoryview read for ~95 % of points."""
        fx = (lon - self._x0) * self._ix if self.n else -1.0
        fy = (lat - self._y0) * self._iy if self.n else -1.0
        if 0.0 <= fx < self.nx and 0.0 <= fy < self.ny:
            v = self._view[int(fy) * self.nx + int(fx)]
            if v >= 0:
                return v, False, 0.0
            if v < OUTSIDE:
                b = -2 - v
                if not self.is_coverage:
                    with self._geos_lock:
                        hits = self._tree.query(shapely.points(lon, lat),
                                                predicate="intersects")
                    if len(hits):
                        return int(hits.min()), False, 0.0
                else:
                    cands = self._cand[self._off[b]:self._off[b + 1]]
                    last = len(cands) - 1
                    for i, c in enumerate(cands):
                        if i == last and self._closed[b]:
                            return int(c), False, 0.0
                        with self._geos_lock:
                            hit = shapely.intersects_xy(self.geoms[c], lon, lat)
                        if hit:
                            return int(c), False, 0.0
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return OUTSIDE, False, math.inf
        nearest, dist = self.nearest(lon, lat)
        if nearest >= 0 and dist <= self.snap_m:
            return nearest, True, dist
        return OUTSIDE, False, dist

    def nearest(self, lon: float, lat: float) -> tuple[int, float]:
        """The nearest grid (index) and its distance in metres; (−1, inf) when empty."""
        if self._tree_m is None:
            return OUTSIDE, math.inf
        idx, dist = self._tree_m.query_nearest(
            shapely.points([lon * self._kx], [lat * self._ky]), return_distance=True,
            all_matches=False)
        return int(idx[1][0]), float(dist[0])

    def locate_many(self, lon: np.ndarray, lat: np.ndarray, nearest: bool = True) -> Located:
        """Arrays of WGS 84 lon/lat → :class:`Located` arrays (no Python loop per point)."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        n = len(lon)
        index = np.full(n, OUTSIDE, dtype=np.int32)
        snapped = np.zeros(n, dtype=bool)
        dist = np.zeros(n, dtype=np.float64)
        near = np.full(n, OUTSIDE, dtype=np.int32)
        if n == 0 or self.n == 0:
            dist[:] = math.inf
            return Located(index, snapped, dist, near)
        finite = np.isfinite(lon) & np.isfinite(lat)
        if not finite.all():  # NaN/inf: outside, at an infinite distance (callers validate)
            ok = np.flatnonzero(finite)
            part = self.locate_many(lon[ok], lat[ok], nearest)
            dist[:] = math.inf
            for whole, piece in ((index, part.index), (snapped, part.snapped),
                                 (dist, part.distance_m), (near, part.nearest)):
                whole[ok] = piece
            return Located(index, snapped, dist, near)
        # Points beyond the raster are clipped onto its 2-bucket margin, which holds no grid
        # interior (only "outside" or edge buckets, both answered exactly below).
        fx = np.clip((lon - self._x0) * self._ix, 0.0, self.nx - 1)
        fy = np.clip((lat - self._y0) * self._iy, 0.0, self.ny - 1)
        flat = fy.astype(np.intp) * self.nx + fx.astype(np.intp)
        v = self._raster[flat]
        index[:] = v
        edge = np.flatnonzero(v < OUTSIDE)
        if len(edge):
            index[edge] = self._exact(edge, -2 - v[edge], lon, lat)
        index[index < OUTSIDE] = OUTSIDE
        near[:] = index
        out = np.flatnonzero(index == OUTSIDE)
        if len(out) and nearest:
            pts = shapely.points(lon[out] * self._kx, lat[out] * self._ky)
            (src, hit), d = self._tree_m.query_nearest(pts, return_distance=True,
                                                      all_matches=False)
            near[out[src]] = hit
            dist[out[src]] = d
            close = out[src][d <= self.snap_m]
            index[close] = near[close]
            snapped[close] = True
        elif len(out):
            dist[out] = math.inf
        return Located(index, snapped, dist, near)

    def _exact(self, pts: np.ndarray, bucket: np.ndarray, lon: np.ndarray, lat: np.ndarray
               ) -> np.ndarray:
        """Exact GEOS covers-test of edge-bucket points against their bucket's candidates;
        candidates are in code order so the first hit per point is the tie-break winner."""
        result = np.full(len(pts), OUTSIDE, dtype=np.int32)
        if not self.is_coverage:
            with self._geos_lock:
                src, hit = self._tree.query(shapely.points(lon[pts], lat[pts]),
                                            predicate="intersects")
            best = np.full(len(pts), np.iinfo(np.int32).max, dtype=np.int64)
            np.minimum.at(best, src, hit)
            found = best < np.iinfo(np.int32).max
            result[found] = best[found]
            return result
        # Round by round: the k-th candidate is tested only for points the first k−1 missed
        # (the lowest code wins anyway), and in a bucket wholly covered by its candidates the
        # last one needs no test — on a shared edge that halves the GEOS calls again.
        start = self._off[bucket]
        count = self._off[bucket + 1] - start
        closed = self._closed[bucket]
        todo = np.arange(len(pts))
        k = 0
        while len(todo):
            todo = todo[count[todo] > k]
            if not len(todo):
                break
            cand = self._cand[start[todo] + k]
            free = closed[todo] & (count[todo] == k + 1)
            result[todo[free]] = cand[free]
            todo, cand = todo[~free], cand[~free]
            p = pts[todo]
            with self._geos_lock:
                hit = shapely.intersects_xy(self.geoms[cand], lon[p], lat[p])
            result[todo[hit]] = cand[hit]
            todo = todo[~hit]
            k += 1
        return result

    # -- pickling (dask workers) ------------------------------------------------------------------
    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.pop("_view", None)  # memoryviews and locks do not pickle; rebuilt below
        state.pop("_geos_lock", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._view = memoryview(self._raster)
        self._geos_lock = contextlib.nullcontext()
        if self.n:
            self._prepare()
            self._tree_m.query(shapely.points(0.0, 0.0))  # build now, not racing (see __init__)

    # -- facts -----------------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        cells = self.nx * self.ny
        return {"grids": self.n, "cell_m": self.cell_m, "buckets": cells,
                "edge_buckets": self.boundary_cells,
                "edge_share": self.boundary_cells / cells if cells else 0.0,
                "bytes": int(self._raster.nbytes + self._cand.nbytes + self._off.nbytes)}
