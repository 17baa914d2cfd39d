"""The in-memory point → unit grid locator (网格定位).

Exact: for every point the answer equals PostGIS ``ST_Covers(grid.geom, point)`` on the same
WGS 84 coordinates. Rules:

- a point covered by several grids (on an edge or vertex shared by neighbours, or in an overlap)
  resolves to the grid with the LOWEST grid code — deterministic and independent of load order;
- the outer boundary of the coverage is inside (covers, not contains);
- outside every grid, within ``snap_m`` (default 30 m, GPS error) of one: the point snaps to
  the nearest grid (the lowest code when several are equally near) and says so (``snapped``);
- farther out: outside. The nearest grid and its distance are measured only when asked for
  (``nearest=True``); otherwise the distance is NaN, meaning "beyond ``snap_m``".

Why this structure (figures in ``benchmarks/README.md``): the time of a point lookup goes into
(a) finding candidates and (b) exact point-in-polygon tests. An STRtree or H3 cell table pays a
tree walk or a hash per point plus an exact test for most points. Instead the locator
rasterises the coverage once into a uniform lon/lat bucket grid (``spatial.bucket_raster``,
~10 m buckets, ≤ 16 M of them): a point's bucket is two multiplications and one array read. A
bucket whose closed square no grid edge touches lies wholly inside one grid, or outside all of
them — and then it also says whether any grid is within the snap distance — so its answer is
stored directly; only points in buckets crossed by an edge get the exact GEOS test, against just
the grids whose edges cross that bucket, and only points near the coverage pay a nearest-grid
search, bounded by the snap distance. H3 cells are computed for every stored point
(``spatial.h3cells``), for aggregation, not for lookup.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import shapely
from numpy.typing import NDArray

from spatial import bucket_raster, snapping
from spatial.bucket_raster import EDGE0, FAR, BucketFrame

_M_PER_DEG = 111_320.0
OUTSIDE = -1
PREPARE_MIN_VERTICES = 64
_NO_GRID = np.iinfo(np.int32).max
_SEGMENT_SEARCH_MIN = 32
# Shewchuk's error bound of the floating-point orientation determinant: beyond it the sign is
# that of the exact determinant, i.e. what GEOS's robust orientation test says.
_ORIENT_ERR = (3.0 + 16.0 * 2.0**-53) * 2.0**-53


@dataclass(frozen=True, slots=True)
class Located:
    """Batch answer, one entry per point.

    ``index``: into the locator's grids, −1 outside (a snapped point has its grid here);
    ``snapped``: outside every grid but within the snap distance of ``index``;
    ``distance_m``: 0 inside, metres to the nearest grid when measured, NaN when not measured
    (outside and beyond the snap distance, without ``nearest=True``), inf for non-finite input;
    ``nearest``: the nearest grid when measured (inside: the grid itself), else −1.
    """

    index: NDArray[np.int32]
    snapped: NDArray[np.bool_]
    distance_m: NDArray[np.float64]
    nearest: NDArray[np.int32]


class GridLocator:
    """Built from grid polygons (lon/lat) and their codes; see the module docstring."""

    def __init__(self, geoms: NDArray[Any] | list[Any], codes: NDArray[Any] | list[Any],
                 ids: NDArray[Any] | list[Any] | None = None, snap_m: float = 30.0,
                 cell_m: float | None = None, max_cells: int = 16_000_000) -> None:
        geoms = np.asarray(geoms, dtype=object)
        codes = np.asarray(codes, dtype=object)
        ids = np.arange(len(codes)) if ids is None else np.asarray(ids)
        order = np.argsort(codes.astype(str), kind="stable")  # rank = tie-break order
        self.geoms: NDArray[np.object_] = geoms[order]
        self.codes: NDArray[np.object_] = codes[order]
        self.ids: NDArray[Any] = ids[order]
        self.snap_m = float(snap_m)
        self.n = len(self.codes)
        self.cell_m = 0.0
        self.nx = self.ny = 0
        self.boundary_cells = self.far_cells = 0
        self.is_coverage = True
        self._raster: NDArray[np.int32] = np.full(0, FAR, dtype=np.int32)
        self._off: NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self._cand: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._closed: NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self._simple: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._corner: NDArray[np.int32] = np.zeros((0, 2), dtype=np.int32)
        self._corner_turn: NDArray[np.int8] = np.zeros(0, dtype=np.int8)
        self._seg_xy: NDArray[np.float64] = np.zeros((0, 4))
        self._seg_owner: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._seg_off: NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self._seg_ids: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._reach = -1
        self._segments: snapping.SegmentIndex | None = None
        self._tree: Any = None
        self._tree_m: Any = None
        self._geos_lock: Any = contextlib.nullcontext()
        self._bounds = (math.inf, math.inf, -math.inf, -math.inf)
        self._kx = self._ky = _M_PER_DEG
        self._x0 = self._y0 = 0.0
        self._ix = self._iy = 1.0
        self._view = self._raster.data
        if self.n == 0:
            return
        self._prepare()
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(self.geoms))
        self._bounds = (minx, miny, maxx, maxy)
        lat0 = (miny + maxy) / 2.0
        self._kx = _M_PER_DEG * math.cos(math.radians(lat0))  # metres per degree of lon
        if cell_m is None:
            # ~800 buckets per grid, and ~50 per vertex for a few grids with long rings (a
            # coastline): finer buckets keep the share of points on an edge small.
            area = max((maxx - minx) * self._kx * (maxy - miny) * self._ky, 1.0)
            vertices = int(shapely.get_num_coordinates(self.geoms).sum())
            budget = min(max(self.n * 800, vertices * 50, 250_000), max_cells)
            cell_m = max(math.sqrt(area / budget), 0.5)
        self.cell_m = float(cell_m)
        dx, dy = cell_m / self._kx, cell_m / self._ky
        self._x0, self._y0 = minx - 2 * dx, miny - 2 * dy
        self._ix, self._iy = 1.0 / dx, 1.0 / dy
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
        # GEOS prepared geometries pay off only for long rings (see benchmarks/README.md).
        big = shapely.get_num_coordinates(self.geoms) >= PREPARE_MIN_VERTICES
        shapely.prepare(self.geoms[big])
        # A GEOS prepared geometry is not safe to share between threads: concurrent predicates
        # on one corrupt the heap (reproduced with 4 threads on SF's neighbourhoods). The API
        # resolves in a thread pool and dask runs partitions in threads, so exact tests are
        # serialised when any grid is prepared; unprepared geometries stay lock-free.
        self._geos_lock = threading.Lock() if big.any() else contextlib.nullcontext()

    def _to_metric(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        # Local equirectangular metres about the coverage's mid-latitude: < 0.1 % error over a
        # city, plenty for snapping and "nearest grid" distances.
        return np.column_stack((xy[:, 0] * self._kx, xy[:, 1] * self._ky))

    def _build_raster(self) -> None:
        frame = BucketFrame(self._x0, self._y0, self._ix, self._iy, self.nx, self.ny)
        # Overlapping grids (not a valid coverage) may cover an edge bucket without an edge in
        # it: then edge-bucket points ask the STRtree for every covering grid instead. Which
        # side of an edge a point lies on says which grid holds it only for valid polygons.
        self.is_coverage = bool(shapely.coverage_is_valid(self.geoms))
        sound = self.is_coverage and bool(shapely.is_valid(self.geoms).all())
        self._reach = bucket_raster.reach_of(self.snap_m, self.cell_m)
        built = bucket_raster.build(self.geoms, frame, self._reach, sound)
        self._raster = built.raster
        self._view = built.raster.data
        self._off, self._cand, self._closed = built.off, built.cand, built.closed
        self._simple, self._seg_xy, self._seg_owner = built.simple, built.seg_xy, built.seg_owner
        self._corner, self._corner_turn = built.corner, built.corner_turn
        self._seg_off, self._seg_ids = built.seg_off, built.seg_ids
        self._segments = snapping.SegmentIndex(
            built, frame, bucket_raster.window(self.snap_m, self.cell_m) if self.snap_m > 0
            else np.zeros((0, 2), dtype=np.int64), self._kx, self._ky)
        self.boundary_cells = built.edge_buckets
        self.far_cells = built.far_buckets
        self._tree = shapely.STRtree(self.geoms)
        if not self.is_coverage:
            self._closed[:] = False

    # -- single point ----------------------------------------------------------------------------
    def locate(self, lon: float, lat: float, nearest: bool = False
               ) -> tuple[int, bool, float]:
        """One point → (grid index or −1, snapped, distance_m), the distance as in
        :class:`Located`. Pure-Python fast path: two multiplications and one memoryview read
        for most points."""
        fx = (lon - self._x0) * self._ix
        fy = (lat - self._y0) * self._iy
        if 0.0 <= fx < self.nx and 0.0 <= fy < self.ny:
            v = self._view[int(fy) * self.nx + int(fx)]
            if v >= 0:
                return v, False, 0.0
            if v <= EDGE0:
                hit = self._exact_one(EDGE0 - v, lon, lat)
                if hit >= 0:
                    return hit, False, 0.0
            elif v == FAR and not nearest:
                return OUTSIDE, False, math.nan
        elif not (math.isfinite(lon) and math.isfinite(lat)) or self.n == 0:
            return OUTSIDE, False, math.inf
        elif not nearest and self._beyond_snap_of_bounds(lon, lat):
            return OUTSIDE, False, math.nan
        if nearest:
            near, dist = self.nearest(lon, lat)
        else:
            near, dist = self._nearest_one(lon, lat, self.snap_m)
        if near >= 0 and dist <= self.snap_m:
            return near, True, dist
        return OUTSIDE, False, dist

    def _exact_one(self, b: int, lon: float, lat: float) -> int:
        if not self.is_coverage:
            with self._geos_lock:
                hits = self._tree.query(shapely.points(lon, lat), predicate="intersects")
            return int(hits.min()) if len(hits) else OUTSIDE
        start, stop = int(self._off[b]), int(self._off[b + 1])
        line = int(self._simple[b])
        if line >= 0:
            x0, y0, x1, y1 = self._seg_xy[line].tolist()
            left, right = (x0 - lon) * (y1 - lat), (y0 - lat) * (x1 - lon)
            det, bound = left - right, _ORIENT_ERR * (abs(left) + abs(right))
            if det > bound:
                return int(self._cand[start])
            if -det > bound:
                return int(self._cand[start + 1]) if stop - start == 2 else OUTSIDE
        cands = self._cand[start:stop]
        last = len(cands) - 1
        for i, c in enumerate(cands):
            if i == last and self._closed[b]:
                return int(c)
            with self._geos_lock:
                hit = shapely.intersects_xy(self.geoms[c], lon, lat)
            if hit:
                return int(c)
        return OUTSIDE

    def _beyond_snap_of_bounds(self, lon: float, lat: float) -> bool:
        minx, miny, maxx, maxy = self._bounds
        ex = max(minx - lon, 0.0, lon - maxx) * self._kx
        ey = max(miny - lat, 0.0, lat - maxy) * self._ky
        return math.hypot(ex, ey) > self.snap_m

    def nearest(self, lon: float, lat: float) -> tuple[int, float]:
        """The nearest grid (index; the lowest code among equally near ones) and its distance
        in metres; (−1, inf) when empty or for a non-finite point."""
        return self._nearest_one(lon, lat, None)

    def _nearest_one(self, lon: float, lat: float, within: float | None
                     ) -> tuple[int, float]:
        if self._tree_m is None or not (math.isfinite(lon) and math.isfinite(lat)):
            return OUTSIDE, math.inf
        if within is not None and within <= 0:
            return OUTSIDE, math.nan
        near = np.full(1, OUTSIDE, dtype=np.int32)
        dist = np.full(1, math.nan)
        self._search(np.zeros(1, dtype=np.intp), np.array([lon]), np.array([lat]), within,
                     near, dist)
        return int(near[0]), float(dist[0])

    # -- batch -----------------------------------------------------------------------------------
    def locate_many(self, lon: NDArray[Any], lat: NDArray[Any], nearest: bool = True,
                    snap: bool = True) -> Located:
        """Arrays of WGS 84 lon/lat → :class:`Located` arrays (no Python loop per point).

        ``nearest``: measure the nearest grid of every point outside all grids (costly far
        from the coverage); otherwise only points within the snap distance are searched, by a
        search bounded by it. ``snap=False``: points outside stay outside (the bare
        ``ST_Covers`` answer)."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        n = len(lon)
        if n == 0 or self.n == 0:
            return Located(np.full(n, OUTSIDE, dtype=np.int32), np.zeros(n, dtype=bool),
                           np.full(n, math.inf), np.full(n, OUTSIDE, dtype=np.int32))
        finite = np.isfinite(lon) & np.isfinite(lat)
        if not finite.all():  # NaN/inf: outside, at an infinite distance (callers validate)
            return self._finite_only(finite, lon, lat, nearest, snap)
        # Points beyond the raster are clipped onto its 2-bucket margin, which no edge touches:
        # its buckets are NEAR or FAR, and a clipped point is at least as far from every grid
        # as its clipped image, so FAR stays true.
        col = np.clip((lon - self._x0) * self._ix, 0.0, self.nx - 1).astype(np.intp)
        row = np.clip((lat - self._y0) * self._iy, 0.0, self.ny - 1).astype(np.intp)
        row *= self.nx
        row += col
        v = self._raster[row]
        del row, col
        index = np.maximum(v, OUTSIDE)  # a grid, or OUTSIDE for NEAR, FAR and edge buckets
        edge = np.flatnonzero(v <= EDGE0)
        if len(edge):
            index[edge] = self._exact(edge, EDGE0 - v[edge], lon, lat)
        near = index.copy()
        out = index == OUTSIDE
        dist = np.where(out, math.inf if nearest else math.nan, 0.0)
        if nearest:
            todo = np.flatnonzero(out)
            self._search(todo, lon, lat, None, near, dist)
        elif snap:
            todo = np.flatnonzero(out & (v != FAR))
            self._search(todo, lon, lat, self.snap_m, near, dist)
        else:
            todo = np.zeros(0, dtype=np.intp)
        snapped = np.zeros(n, dtype=bool)
        if snap and len(todo):
            close = todo[dist[todo] <= self.snap_m]
            index[close] = near[close]
            snapped[close] = True
        return Located(index, snapped, dist, near)

    def _finite_only(self, finite: NDArray[np.bool_], lon: NDArray[np.float64],
                     lat: NDArray[np.float64], nearest: bool, snap: bool) -> Located:
        ok = np.flatnonzero(finite)
        part = self.locate_many(lon[ok], lat[ok], nearest, snap)
        n = len(lon)
        found = Located(np.full(n, OUTSIDE, dtype=np.int32), np.zeros(n, dtype=bool),
                        np.full(n, math.inf), np.full(n, OUTSIDE, dtype=np.int32))
        for whole, piece in ((found.index, part.index), (found.snapped, part.snapped),
                             (found.distance_m, part.distance_m), (found.nearest, part.nearest)):
            whole[ok] = piece
        return found

    def _search(self, todo: NDArray[np.intp], lon: NDArray[np.float64],
                lat: NDArray[np.float64], within: float | None, near: NDArray[np.int32],
                dist: NDArray[np.float64]) -> None:
        """Nearest grid of the points ``todo`` (within ``within`` metres when given) into
        ``near``/``dist``; equally near grids resolve to the lowest code."""
        if not len(todo) or (within is not None and within <= 0):
            return
        # The segment search pays off from a few dozen points on; one point costs less through
        # the STRtree (figures in benchmarks/README.md).
        if within is not None and within <= self.snap_m and self._segments is not None \
                and self._segments.usable and len(todo) >= _SEGMENT_SEARCH_MIN:
            found_near, found_dist = snapping.nearest_within(self._segments, lon[todo],
                                                             lat[todo], within)
            near[todo] = np.where(found_near >= 0, found_near, near[todo])
            dist[todo] = np.where(found_near >= 0, found_dist, dist[todo])
            return
        x, y = lon[todo] * self._kx, lat[todo] * self._ky
        pts = cast(NDArray[np.object_], shapely.points(x, y))
        d: NDArray[np.float64]
        if within is None:
            (src, hit), d = self._tree_m.query_nearest(pts, return_distance=True,
                                                      all_matches=True)
        else:
            # A box query and exact distances to its candidates: GEOS's bounded nearest search
            # costs several times more near polygons with many vertices.
            src, hit = self._tree_m.query(shapely.box(x - within, y - within, x + within,
                                                      y + within))
            d = shapely.distance(pts[src], self._tree_m.geometries[hit])
            keep = d <= within
            src, hit, d = src[keep], hit[keep], d[keep]
            # the nearest of each point, then every grid at exactly that distance
            least = np.full(len(todo), np.inf)
            np.minimum.at(least, src, d)
            keep = d == least[src]
            src, hit, d = src[keep], hit[keep], d[keep]
        if not len(src):
            return
        # all_matches gives every equally near grid; the lowest rank (code) wins.
        best = np.full(len(todo), _NO_GRID, dtype=np.int64)
        np.minimum.at(best, src, hit)
        found = np.flatnonzero(best < _NO_GRID)
        near[todo[found]] = best[found]
        dist[todo[src]] = d  # equal for every match of one point

    def _exact(self, pts: NDArray[np.intp], bucket: NDArray[np.int32],
               lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.int32]:
        """Exact GEOS covers-test of edge-bucket points against their bucket's candidates;
        candidates are in code order so the first hit per point is the tie-break winner."""
        result = np.full(len(pts), OUTSIDE, dtype=np.int32)
        if not self.is_coverage:
            with self._geos_lock:
                src, hit = self._tree.query(shapely.points(lon[pts], lat[pts]),
                                            predicate="intersects")
            best = np.full(len(pts), _NO_GRID, dtype=np.int64)
            np.minimum.at(best, src, hit)
            found = best < _NO_GRID
            result[found] = best[found]
            return result
        start = self._off[bucket]
        count = self._off[bucket + 1] - start
        todo = self._by_side(pts, bucket, start, count, lon, lat, result)
        # Round by round: the k-th candidate is tested only for points the first k−1 missed
        # (the lowest code wins anyway), and in a bucket wholly covered by its candidates the
        # last one needs no test — on a shared edge that halves the GEOS calls again.
        closed = self._closed[bucket]
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

    def _by_side(self, pts: NDArray[np.intp], bucket: NDArray[np.int32],
                 start: NDArray[np.int64], count: NDArray[np.int64], lon: NDArray[np.float64],
                 lat: NDArray[np.float64], result: NDArray[np.int32]) -> NDArray[np.intp]:
        """Points in buckets crossed by one straight piece of edge: the side of it they lie on
        names the grid (the first candidate on the left, the second or none on the right);
        points in buckets where the edge between two grids bends once: the sides of its two
        pieces. Fills ``result`` for those decided; returns the positions still to test with
        GEOS (other buckets, and points on or within rounding of an edge)."""
        undecided = np.ones(len(pts), dtype=bool)
        self._by_corner(pts, bucket, start, lon, lat, result, undecided)
        line = self._simple[bucket]
        one = np.flatnonzero(line >= 0)
        if not len(one):
            return np.flatnonzero(undecided)
        seg = self._seg_xy[line[one]]
        p = pts[one]
        px, py = lon[p], lat[p]
        left = (seg[:, 0] - px) * (seg[:, 3] - py)
        right = (seg[:, 1] - py) * (seg[:, 2] - px)
        det = left - right
        bound = _ORIENT_ERR * (np.abs(left) + np.abs(right))
        is_left, is_right = det > bound, -det > bound
        first = self._cand[start[one]]
        second = np.where(count[one] == 2, self._cand[np.minimum(start[one] + 1,
                                                                  len(self._cand) - 1)],
                          OUTSIDE)
        result[one[is_left]] = first[is_left]
        result[one[is_right]] = second[is_right]
        undecided[one[is_left | is_right]] = False
        return np.flatnonzero(undecided)

    def _by_corner(self, pts: NDArray[np.intp], bucket: NDArray[np.int32],
                   start: NDArray[np.int64], lon: NDArray[np.float64],
                   lat: NDArray[np.float64], result: NDArray[np.int32],
                   undecided: NDArray[np.bool_]) -> None:
        """Corner buckets (``bucket_raster._corners``): the first candidate's side of the bent
        edge A→V→B is the wedge left of both pieces where the edge turns left, left of either
        where it turns right; the second candidate holds the rest of the bucket."""
        if not len(self._corner):
            return
        pair = self._corner[bucket]
        at = np.flatnonzero(pair[:, 0] >= 0)
        if not len(at):
            return
        p = pts[at]
        px, py = lon[p], lat[p]
        sides = []
        for k in (0, 1):
            seg = self._seg_xy[pair[at, k]]
            left = (seg[:, 0] - px) * (seg[:, 3] - py)
            right = (seg[:, 1] - py) * (seg[:, 2] - px)
            det = left - right
            bound = _ORIENT_ERR * (np.abs(left) + np.abs(right))
            sides.append((det > bound, -det > bound))
        (l1, r1), (l2, r2) = sides
        convex = self._corner_turn[bucket[at]] > 0
        first_side = np.where(convex, l1 & l2, l1 | l2)
        second_side = np.where(convex, r1 | r2, r1 & r2)
        first = self._cand[start[at]]
        second = self._cand[start[at] + 1]
        result[at[first_side]] = first[first_side]
        result[at[second_side]] = second[second_side]
        undecided[at[first_side | second_side]] = False

    # -- pickling (dask workers) ------------------------------------------------------------------
    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.pop("_view", None)  # memoryviews and locks do not pickle; rebuilt below
        state.pop("_geos_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._view = self._raster.data
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
                "far_share": self.far_cells / cells if cells else 0.0,
                "bytes": int(sum(a.nbytes for a in (
                    self._raster, self._cand, self._off, self._closed, self._simple,
                    self._corner, self._corner_turn,
                    self._seg_xy, self._seg_owner, self._seg_off, self._seg_ids)))}
