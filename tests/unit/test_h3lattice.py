"""H3 cells shared through the local IJ lattice are exactly h3's (no database)."""

from __future__ import annotations

import h3
import numpy as np
import pytest
from h3ronpy.vector import coordinates_to_cells

from spatial import h3cells, h3lattice


def _h3(lon: np.ndarray, lat: np.ndarray, res: int) -> np.ndarray:
    return np.asarray(coordinates_to_cells(lat, lon, res), dtype=np.uint64)


def _edges(lon0: float, lat0: float, w: float, h: float, res: int, n: int,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points on the straight lines between the corners of cells in the box (within a
    fraction of a millimetre of h3's geodesic edges) and on the corners themselves."""
    seeds = zip(rng.uniform(lat0, lat0 + h, 400).tolist(),
                rng.uniform(lon0, lon0 + w, 400).tolist(), strict=True)
    rings = [np.array(h3.cell_to_boundary(h3.latlng_to_cell(lat, lon, res)))
             for lat, lon in seeds]
    a = np.concatenate(rings)
    b = np.concatenate([np.roll(r, -1, axis=0) for r in rings])
    pick = rng.integers(0, len(a), n)
    t = rng.choice([0.0, 0.5, 1 / 3, 0.9], n)[:, None]
    pts = a[pick] + t * (b[pick] - a[pick]) + rng.choice([0.0, 1e-12, -1e-9], (n, 2))
    return pts[:, 1], pts[:, 0]


@pytest.mark.parametrize(("lon0", "lat0", "w", "h"), [
    (116.2, 39.7, 0.45, 0.4),  # Beijing, 40 km
    (-122.52, 37.70, 0.16, 0.14),  # San Francisco
    (24.8, 60.1, 0.6, 0.3),  # Helsinki, further north
    (121.2, 30.9, 0.4, 0.35),  # Shanghai
])
@pytest.mark.parametrize("res", [10, 9, 8])
def test_lattice_cells_equal_h3(lon0: float, lat0: float, w: float, h: float, res: int) -> None:
    rng = np.random.default_rng(res)
    lon = rng.uniform(lon0, lon0 + w, 500_000)
    lat = rng.uniform(lat0, lat0 + h, 500_000)
    elon, elat = _edges(lon0, lat0, w, h, res, 20_000, rng)
    lon, lat = np.concatenate([lon, elon]), np.concatenate([lat, elat])
    which, cells = h3lattice.cells_grouped(lon, lat, res)
    got = cells if which is None else cells[which]
    assert np.array_equal(got, _h3(lon, lat, res))
    if res == 10:
        assert which is not None  # the lattice was used, not the fallback
        assert len(cells) < len(lon) / 3
    strings = h3cells.cells_arrow(lon[:1000], lat[:1000], res).to_pylist()
    assert strings == [h3.latlng_to_cell(y, x, res) for x, y in
                       zip(lon[:1000].tolist(), lat[:1000].tolist(), strict=True)]


@pytest.mark.parametrize(("lon0", "lat0", "w", "h"), [
    (10.44, 64.6, 0.2, 0.2),  # around an H3 pentagon
    (179.8, -17.0, 0.4, 0.3),  # across the antimeridian
    (-10.0, 85.0, 20.0, 4.0),  # near the pole
    (100.0, 20.0, 30.0, 25.0),  # a continent: nothing to share
])
def test_where_the_lattice_does_not_hold_h3_answers_alone(lon0: float, lat0: float, w: float,
                                                          h: float) -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(lon0, lon0 + w, 100_000)
    lon = np.where(lon > 180, lon - 360, lon)
    lat = rng.uniform(lat0, lat0 + h, 100_000)
    assert np.array_equal(h3lattice.cells_uint64(lon, lat, 10), _h3(lon, lat, 10))


def test_small_batches_go_straight_to_h3() -> None:
    rng = np.random.default_rng(2)
    lon, lat = rng.uniform(116.3, 116.4, 500), rng.uniform(39.8, 39.9, 500)
    which, cells = h3lattice.cells_grouped(lon, lat, 10)
    assert which is None and np.array_equal(cells, _h3(lon, lat, 10))
