"""Snapping and the nearest grid: the locator against GEOS's own distances (no database).

The rule: a point covered by no grid snaps to the nearest grid within ``snap_m`` (the lowest
code among equally near ones) and says so; farther out it is outside, and its distance is
measured only when asked for (``nearest=True``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from demo.street_grids import street_grids
from spatial.locator import OUTSIDE, GridLocator


def _codes(n: int) -> list[str]:
    return [f"110101001{1 + i // 999:03d}{1 + i % 999:03d}" for i in range(n)]


def _reference(loc: GridLocator, lon: np.ndarray, lat: np.ndarray, snap_m: float | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per point: the grid (lowest rank covering it, else the lowest rank among the nearest
    within ``snap_m``; −1) and the distance (0 inside, NaN beyond) — by shapely/GEOS alone."""
    pts = shapely.points(lon, lat)
    index = np.full(len(lon), OUTSIDE)
    dist = np.full(len(lon), np.nan)
    src, hit = shapely.STRtree(loc.geoms).query(pts, predicate="intersects")
    for s, h in zip(src, hit, strict=True):
        index[s] = h if index[s] < 0 else min(index[s], h)
    dist[index >= 0] = 0.0
    out = np.flatnonzero(index < 0)
    metric = shapely.transform(loc.geoms, loc._to_metric)
    mpts = shapely.points(lon[out] * loc._kx, lat[out] * loc._ky)
    (src, hit), d = shapely.STRtree(metric).query_nearest(
        mpts, max_distance=snap_m, return_distance=True, all_matches=True)
    best = np.full(len(out), np.iinfo(np.int64).max)
    np.minimum.at(best, src, hit)
    found = best < np.iinfo(np.int64).max
    index[out[found]] = best[found]
    dist[out[src]] = d
    return index, dist


@pytest.fixture(scope="module")
def street() -> GridLocator:
    grids = street_grids(1200, seed=3)
    return GridLocator(grids, _codes(len(grids)))


def _around(loc: GridLocator, n: int, pad: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = shapely.total_bounds(loc.geoms)
    return rng.uniform(minx - pad, maxx + pad, n), rng.uniform(miny - pad, maxy + pad, n)


def test_bounded_snapping_equals_geos_nearest_within_the_snap_distance(street) -> None:  # type: ignore[no-untyped-def]
    lon, lat = _around(street, 200_000, 0.004, seed=1)
    # and points just outside the outline: within a few metres to a hundred metres
    ring = shapely.get_coordinates(shapely.boundary(shapely.union_all(street.geoms)))
    rng = np.random.default_rng(2)
    pick = ring[rng.integers(0, len(ring), 20_000)]
    lon = np.concatenate([lon, pick[:, 0] + rng.normal(0, 3e-4, len(pick))])
    lat = np.concatenate([lat, pick[:, 1] + rng.normal(0, 3e-4, len(pick))])
    found = street.locate_many(lon, lat, nearest=False)
    want, dist = _reference(street, lon, lat, street.snap_m)
    assert found.snapped.sum() > 2_000 and (found.index < 0).sum() > 10_000
    assert np.array_equal(found.index, want)
    snapped = found.snapped
    assert np.array_equal(snapped, (want >= 0) & (dist > 0))
    assert np.allclose(found.distance_m[snapped], dist[snapped], rtol=0, atol=1e-9)
    assert (found.distance_m[want >= 0] <= street.snap_m).all()
    beyond = found.index < 0
    assert np.isnan(found.distance_m[beyond]).all() and (found.nearest[beyond] == -1).all()


def test_nearest_true_measures_every_point_and_agrees_on_the_snap(street) -> None:  # type: ignore[no-untyped-def]
    lon, lat = _around(street, 50_000, 0.02, seed=4)
    bounded = street.locate_many(lon, lat, nearest=False)
    full = street.locate_many(lon, lat, nearest=True)
    assert np.array_equal(bounded.index, full.index)
    assert np.array_equal(bounded.snapped, full.snapped)
    want, dist = _reference(street, lon, lat, None)
    assert np.array_equal(full.nearest, want)
    assert np.allclose(full.distance_m, dist, rtol=0, atol=1e-9)
    far = full.index < 0
    assert far.any() and (full.distance_m[far] > street.snap_m).all()


def test_far_points_skip_the_search(street, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    minx, miny, maxx, maxy = shapely.total_bounds(street.geoms)
    lon = np.array([minx - 0.05, maxx + 1.0, (minx + maxx) / 2])
    lat = np.array([miny - 0.05, maxy, maxy + 0.3])
    calls: list[int] = []
    real = street._search

    def spy(todo, *args):  # type: ignore[no-untyped-def]
        calls.append(len(todo))
        return real(todo, *args)

    monkeypatch.setattr(street, "_search", spy)
    found = street.locate_many(lon, lat, nearest=False)
    assert list(found.index) == [OUTSIDE] * 3 and np.isnan(found.distance_m).all()
    assert sum(calls) == 0  # nothing measured
    assert street.locate(float(lon[0]), float(lat[0])) == (OUTSIDE, False, pytest.approx(
        math.nan, nan_ok=True))
    assert sum(calls) == 0
    assert street.locate(float(lon[0]), float(lat[0]), nearest=True)[2] > 4_000


def test_equally_near_grids_snap_to_the_lowest_code() -> None:
    # a 3 × 3 block of squares, codes descending: beyond each outer corner shared by two
    # squares lies a wedge of points equally near to both
    squares = [shapely.box(0.001 * i, 0.001 * j, 0.001 * (i + 1), 0.001 * (j + 1))
               for i in range(3) for j in range(3)]
    codes = [f"11010100100100{k}" for k in range(9)][::-1]
    loc = GridLocator(squares, codes)
    lon, lat = _around(loc, 100_000, 0.0004, seed=6)
    found = loc.locate_many(lon, lat, nearest=False)
    want, _ = _reference(loc, lon, lat, loc.snap_m)
    assert np.array_equal(found.index, want)
    # the point straight below the corner shared by the first two columns' bottom squares
    one = loc.locate(0.001, -0.00015)
    assert one[1] and loc.codes[one[0]] == min(codes[0], codes[3])


def test_single_lookups_agree_with_the_batch(street) -> None:  # type: ignore[no-untyped-def]
    lon, lat = _around(street, 20_000, 0.003, seed=8)
    found = street.locate_many(lon, lat, nearest=False)
    for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
        idx, snapped, dist = street.locate(x, y)
        assert (idx, snapped) == (found.index[i], found.snapped[i])
        assert (math.isnan(dist) and math.isnan(found.distance_m[i])) or \
            abs(dist - found.distance_m[i]) < 1e-9


def test_no_snap_distance_means_no_snapping() -> None:
    grids = street_grids(300, seed=9)
    loc = GridLocator(grids, _codes(len(grids)), snap_m=0.0)
    lon, lat = _around(loc, 20_000, 0.003, seed=10)
    found = loc.locate_many(lon, lat, nearest=False)
    assert not found.snapped.any()
    measured = loc.locate_many(lon, lat, nearest=True)
    assert not measured.snapped.any() and (measured.distance_m[found.index < 0] > 0).all()
    assert loc.stats()["far_share"] > 0.2


def test_snap_false_is_the_bare_st_covers_answer(street) -> None:  # type: ignore[no-untyped-def]
    lon, lat = _around(street, 50_000, 0.003, seed=11)
    bare = street.locate_many(lon, lat, nearest=False, snap=False)
    want, _ = _reference(street, lon, lat, 1e-9)  # nothing is that near
    assert not bare.snapped.any()
    assert np.array_equal(bare.index, want)


def test_buckets_where_an_edge_bends_decide_by_both_sides_like_geos(street) -> None:  # type: ignore[no-untyped-def]
    """Edge buckets holding one bend of an edge between two grids are decided by the sides of
    its two pieces (convex and reflex bends alike), never differently from GEOS: points
    scattered at 1e-9° to 1e-4° around every kind of vertex, against an STRtree covers-test
    (lowest code on shared edges)."""
    loc = street
    geoms = loc.geoms
    assert (loc._corner[:, 0] >= 0).sum() > 100
    assert {-1, 1} <= set(loc._corner_turn.tolist())  # both kinds of bend
    rng = np.random.default_rng(11)
    xy = shapely.get_coordinates(geoms)
    base = xy[rng.integers(0, len(xy), 200_000)]
    scale = 10 ** rng.uniform(-9, -4, len(base))
    angle = rng.uniform(0, 2 * math.pi, len(base))
    lon, lat = base[:, 0] + scale * np.cos(angle), base[:, 1] + scale * np.sin(angle)
    got = loc.locate_many(lon, lat, nearest=False, snap=False).index
    src, hit = shapely.STRtree(loc.geoms).query(shapely.points(lon, lat), predicate="intersects")
    best = np.full(len(lon), np.iinfo(np.int64).max)
    np.minimum.at(best, src, hit)
    want = np.where(best == np.iinfo(np.int64).max, OUTSIDE, best)
    assert (got == want).all()
