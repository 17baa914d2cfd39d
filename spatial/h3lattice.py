"""H3 cells of many points of one city, exactly as h3 computes them, with far fewer h3 calls.

Why not just h3ronpy for every point: most of h3's time per point goes into descending the
resolution levels, and for a big frame that alone costs more than the grid lookup around it
(figures in ``benchmarks/README.md``). Within a city the cells of one resolution form a
regular hexagonal lattice in H3's local IJ coordinates (h3's own ``cellToLocalIj``, exact
integers), and the map from lon/lat to that plane is smooth. So:

1. fit that map as a cubic polynomial of lon/lat to h3's own cell centres and local IJ
   coordinates (41 × 41 sample cells), and measure its error on other cells between them;
2. per point, evaluate the polynomial and round to the nearest lattice point (cube rounding);
   a point farther inside that hexagon than ten times the largest fit error measured between
   the samples is taken to lie in that cell;
3. ask h3 itself for the index of each distinct lattice cell (``localIjToCell``), and for the
   cell of every point closer to an edge than the margin (``latLngToCell``).

Every cell index therefore comes from h3; the lattice only says which points share one. Where
the map is not smooth enough (a region across an icosahedron edge, near a pentagon, far apart
points, an antimeridian), the fit error shows it and everything goes to h3ronpy, as it does for
small batches and fine resolutions, where there is nothing to share. A final spot check compares
a sample with h3ronpy; any difference (never seen in the tests) sends the whole batch to h3ronpy.
"""

from __future__ import annotations

import math

import h3
import numpy as np
import pandas as pd
import pyarrow as pa
from h3ronpy import cells_to_localij, localij_to_cells
from h3ronpy.vector import cells_to_coordinates, coordinates_to_cells
from numpy.typing import NDArray

MIN_POINTS = 50_000  # below: one h3ronpy call is as fast as the fit
_S = math.sqrt(3.0) / 2.0
_SAMPLES = 41
_SAFETY = 10.0  # margin = this × the largest fit error seen between the samples
_MAX_MARGIN = 0.02  # hexagon units; beyond, too many points would go to h3 one by one
_CHECK = 2_000


def _direct(lon: NDArray[np.float64], lat: NDArray[np.float64], res: int
            ) -> NDArray[np.uint64]:
    return np.asarray(coordinates_to_cells(lat, lon, res), dtype=np.uint64)


class _Fit:
    """The cubic map lon/lat → H3's local IJ plane (x = i − j/2, y = j·√3/2: neighbouring
    cell centres one unit apart) over a box."""

    def __init__(self, box: tuple[float, float, float, float], res: int) -> None:
        x0, y0, x1, y1 = box
        self.cx, self.cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.isx = 2.0 / max(x1 - x0, 1e-9)
        self.isy = 2.0 / max(y1 - y0, 1e-9)
        centre = coordinates_to_cells(np.array([self.cy]), np.array([self.cx]), res)
        self.anchor = int(np.asarray(centre)[0])
        a, px, py = self._samples(box, res, 0.0)
        # Normal equations: lstsq on this 1,681 × 10 system costs tens of milliseconds when
        # BLAS threads compete; the terms are scaled to [-1, 1], so the system is well posed.
        coef = np.linalg.solve(a.T @ a, a.T @ np.column_stack((px, py)))
        self.ax = np.asarray(coef[:, 0], dtype=np.float64)
        self.ay = np.asarray(coef[:, 1], dtype=np.float64)
        # The error between the samples: on cells half a step off the fitted ones.
        b, qx, qy = self._samples(box, res, 0.5)
        self.error = float(np.hypot(b @ self.ax - qx, b @ self.ay - qy).max())

    def _samples(self, box: tuple[float, float, float, float], res: int, shift: float
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        x0, y0, x1, y1 = box
        k = _SAMPLES - (1 if shift else 0)
        step_x, step_y = (x1 - x0) / (_SAMPLES - 1), (y1 - y0) / (_SAMPLES - 1)
        gx, gy = np.meshgrid(x0 + (np.arange(k) + shift) * step_x,
                             y0 + (np.arange(k) + shift) * step_y)
        cells = coordinates_to_cells(gy.ravel(), gx.ravel(), res)
        ij = cells_to_localij(cells, self.anchor)  # raises near pentagons: caller falls back
        i = np.asarray(ij.column("i"), dtype=np.float64)
        j = np.asarray(ij.column("j"), dtype=np.float64)
        centres = cells_to_coordinates(cells)
        u = (np.asarray(centres.column("lng"), dtype=np.float64) - self.cx) * self.isx
        v = (np.asarray(centres.column("lat"), dtype=np.float64) - self.cy) * self.isy
        terms = np.column_stack((np.ones_like(u), u, v, u * u, u * v, v * v, u * u * u,
                                 u * u * v, u * v * v, v * v * v))
        return terms, i - 0.5 * j, j * _S

    def cells(self, lon: NDArray[np.float64], lat: NDArray[np.float64], margin: float
              ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
        """Local IJ of the points' nearest cell centres, and whether each point lies more
        than ``margin`` inside that hexagon."""
        u = np.asarray(lon - self.cx, dtype=np.float64)
        u *= self.isx
        v = np.asarray(lat - self.cy, dtype=np.float64)
        v *= self.isy
        uu, vv = u * u, v * v
        x = self._cubic(self.ax, u, v, uu, vv)
        y = self._cubic(self.ay, u, v, uu, vv)
        del u, v, uu, vv
        # Cube rounding on the 60° basis (e_i, e_i + e_j): q = i − j, r = j, s = −q − r.
        r = y * (1.0 / _S)
        q = x + 0.5 * r
        q -= r
        s = -q
        s -= r
        rq, rr, rs = np.rint(q), np.rint(r), np.rint(s)
        q -= rq
        np.abs(q, out=q)
        r -= rr
        np.abs(r, out=r)
        s -= rs
        np.abs(s, out=s)
        fix_q = (q > r) & (q > s)
        fix_r = ~fix_q & (r >= s)
        del q, r, s
        rq = np.where(fix_q, -rr - rs, rq)
        rr = np.where(fix_r, -rq - rs, rr)
        ci = rq
        ci += rr
        # Inside the hexagon by more than the margin: on each of the three axes through its
        # edges' midpoints the offset is below one half minus the margin.
        x -= ci
        x += 0.5 * rr
        y -= rr * _S
        y *= _S
        half = 0.5 * x
        edge = np.abs(x)
        np.maximum(edge, np.abs(half + y), out=edge)
        np.maximum(edge, np.abs(half - y), out=edge)
        return ci.astype(np.int64), rr.astype(np.int64), edge < 0.5 - margin

    @staticmethod
    def _cubic(c: NDArray[np.float64], u: NDArray[np.float64], v: NDArray[np.float64],
               uu: NDArray[np.float64], vv: NDArray[np.float64]) -> NDArray[np.float64]:
        # c0 + u (c1 + c3 u + c4 v + c6 u² + c8 v²) + v (c2 + c5 v + c7 u² + c9 v²)
        inner: NDArray[np.float64] = c[3] * u
        inner += c[1]
        inner += c[4] * v
        inner += c[6] * uu
        inner += c[8] * vv
        inner *= u
        other = c[5] * v
        other += c[2]
        other += c[7] * uu
        other += c[9] * vv
        other *= v
        inner += other
        inner += c[0]
        return inner


def cells_grouped(lon: NDArray[np.float64], lat: NDArray[np.float64], res: int
                  ) -> tuple[NDArray[np.intp] | None, NDArray[np.uint64]]:
    """H3 cells of WGS 84 points, identical to h3's ``latLngToCell``, as ``(which, cells)``:
    point ``k`` lies in ``cells[which[k]]`` (so that callers convert each cell once), or in
    ``cells[k]`` when ``which`` is None."""
    n = len(lon)
    if n < MIN_POINTS or not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        return None, _direct(lon, lat, res)
    box = (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    # Sharing pays only when many points fall in each cell.
    width = (box[2] - box[0]) * 111_320.0 * math.cos(math.radians((box[1] + box[3]) / 2))
    height = (box[3] - box[1]) * 111_320.0
    if width * height / h3.average_hexagon_area(res, "m^2") > n / 4 or abs(box[1]) > 80 \
            or abs(box[3]) > 80:
        return None, _direct(lon, lat, res)
    try:
        fit = _Fit(box, res)
    except ValueError:  # no local IJ here (a pentagon, or too far apart)
        return None, _direct(lon, lat, res)
    margin = _SAFETY * fit.error
    if not margin < _MAX_MARGIN:
        return None, _direct(lon, lat, res)
    ci, cj, sure = fit.cells(lon, lat, margin)
    unsure = np.flatnonzero(~sure)
    if len(unsure) * 4 > n:
        return None, _direct(lon, lat, res)
    # the unsure are answered point by point below; their lattice guesses must not widen
    # the table
    some = int(np.argmax(sure))
    ci[unsure], cj[unsure] = ci[some], cj[some]
    # The distinct cells: a dense table over the points' IJ box (the box holds a few
    # hundred thousand cells for a city), else a hash.
    i0, j0 = int(ci.min()), int(cj.min())
    width = int(cj.max()) - j0 + 1
    span = (int(ci.max()) - i0 + 1) * width
    key = (ci - i0) * width + (cj - j0)
    if span <= 4 * n:
        used = np.zeros(span, dtype=bool)
        used[key] = True
        uniq = np.flatnonzero(used)
        slot = np.cumsum(used) - 1
        which = slot[key].astype(np.intp)
    else:
        group, uniq = pd.factorize(key)
        which = np.asarray(group, dtype=np.intp)
    ui, uj = uniq // width + i0, uniq % width + j0
    found = pa.array(localij_to_cells(fit.anchor, ui.astype(np.int32), uj.astype(np.int32),
                                      set_failing_to_invalid=True))
    if found.null_count:  # IJ that h3 cannot map back (pentagon distortion)
        return None, _direct(lon, lat, res)
    lattice = np.asarray(found.to_numpy(), dtype=np.uint64)
    cells = np.concatenate((lattice, _direct(lon[unsure], lat[unsure], res)))
    which[unsure] = len(uniq) + np.arange(len(unsure))
    check = np.linspace(0, n - 1, _CHECK).astype(np.intp)
    if (cells[which[check]] != _direct(lon[check], lat[check], res)).any():
        return None, _direct(lon, lat, res)
    return which, cells


def cells_uint64(lon: NDArray[np.float64], lat: NDArray[np.float64], res: int
                 ) -> NDArray[np.uint64]:
    """H3 cells (as integers) of WGS 84 points, identical to h3's ``latLngToCell``."""
    which, cells = cells_grouped(lon, lat, res)
    if which is None:
        return cells
    out: NDArray[np.uint64] = cells[which]
    return out
