"""The locator answers exactly what PostGIS ST_Covers answers (lowest code on shared edges)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from demo.street_grids import street_grids
from layers.grids.index import GridIndex
from tests.support.data import shared_file
from tests.support.grids import load_grids, postgis_covers, voronoi_grids


def _codes(db, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    snap = GridIndex(db).current()
    found = snap.locator.locate_many(lon, lat, nearest=False, snap=False)
    single = np.array([snap.locator.locate(x, y)[0]
                       for x, y in zip(lon[:2000], lat[:2000], strict=True)])
    # The scalar path must agree with the batch path (ignoring snapping).
    batch_head = found.index[:2000]
    assert np.all((single == batch_head) | (batch_head < 0))
    return np.where(found.index >= 0, snap.codes[np.maximum(found.index, 0)], "")


def _assert_same(got: np.ndarray, want: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> None:
    bad = np.flatnonzero(got != want)
    detail = [(float(lon[i]), float(lat[i]), got[i], want[i]) for i in bad[:5]]
    assert len(bad) == 0, f"{len(bad)} mismatches against ST_Covers, e.g. {detail}"


def test_voronoi_random_edges_and_vertices_match_st_covers(db) -> None:  # type: ignore[no-untyped-def]
    grids = voronoi_grids(1500, km=8.0)
    load_grids(db, grids)
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = shapely.total_bounds(grids)
    pad = 0.002
    lon = rng.uniform(minx - pad, maxx + pad, 100_000)
    lat = rng.uniform(miny - pad, maxy + pad, 100_000)
    # Points exactly on vertices (shared by 2–3 grids and on the outer boundary) and on
    # shared edges (midpoints, and points a third of the way along).
    xy = shapely.get_coordinates(shapely.get_exterior_ring(grids))
    seg_a, seg_b = xy[:-1], xy[1:]
    edge = np.concatenate([seg_a, (seg_a + seg_b) / 2, seg_a + (seg_b - seg_a) / 3])
    edge = edge[rng.permutation(len(edge))[:20_000]]
    lon = np.concatenate([lon, edge[:, 0], [minx, maxx]])
    lat = np.concatenate([lat, edge[:, 1], [miny, maxy]])
    got = _codes(db, lon, lat)
    want = postgis_covers(db, lon, lat)
    assert (want[100_000:] != "").mean() > 0.99  # the planted points are on the coverage
    _assert_same(got, want, lon, lat)


def test_street_shaped_grids_match_st_covers(db) -> None:  # type: ignore[no-untyped-def]
    # Densified jittered edges: most edge buckets are crossed by one straight piece of edge
    # (decided by the side of it), the others hold vertices (decided by GEOS).
    grids = street_grids(800, seed=5)
    load_grids(db, grids)
    rng = np.random.default_rng(12)
    minx, miny, maxx, maxy = shapely.total_bounds(grids)
    lon = rng.uniform(minx, maxx, 80_000)
    lat = rng.uniform(miny, maxy, 80_000)
    xy = shapely.get_coordinates(grids)
    seg_a, seg_b = xy[:-1], xy[1:]
    on = np.concatenate([seg_a, (seg_a + seg_b) / 2, seg_a + (seg_b - seg_a) / 3])
    on = on[rng.permutation(len(on))[:20_000]]
    lon, lat = np.concatenate([lon, on[:, 0]]), np.concatenate([lat, on[:, 1]])
    got = _codes(db, lon, lat)
    want = postgis_covers(db, lon, lat)
    assert (want == "").mean() > 0.2  # the box holds open land around the ragged outline
    _assert_same(got, want, lon, lat)


def test_sf311_points_match_st_covers_and_neighbourhood(db) -> None:  # type: ignore[no-untyped-def]
    hoods = gpd.read_file(shared_file("san_francisco/sf_analysis_neighborhoods.geojson"))
    cases = pd.read_csv(shared_file("san_francisco/sf311_cases_sample.csv"))
    assert len(cases) == 4984
    codes = load_grids(db, hoods.geometry.values, names=list(hoods["nhood"]))
    name_of = dict(zip(codes, hoods["nhood"], strict=True))
    lon, lat = cases["Long"].to_numpy(float), cases["Lat"].to_numpy(float)
    got = _codes(db, lon, lat)
    _assert_same(got, postgis_covers(db, lon, lat), lon, lat)
    found = np.array([name_of.get(c, "") for c in got], dtype=object)
    wrong = np.flatnonzero(found != cases["C.Neighborhood"].to_numpy(object))
    assert len(wrong) == 0, cases.iloc[wrong[:5]][["CaseID", "C.Neighborhood"]]


def test_paris_trees_match_st_covers(db) -> None:  # type: ignore[no-untyped-def]
    quartiers = gpd.read_file(shared_file("paris/paris_districts.geojson"))
    trees = gpd.read_file(shared_file("paris/paris_trees.geojson"))
    load_grids(db, quartiers.geometry.values)
    lon, lat = trees.geometry.x.to_numpy(), trees.geometry.y.to_numpy()
    got = _codes(db, lon, lat)
    want = postgis_covers(db, lon, lat)
    assert (want != "").sum() > 7000
    _assert_same(got, want, lon, lat)


@pytest.mark.parametrize("cell_m", [3.0, 25.0])
def test_exact_at_other_bucket_sizes(db, cell_m: float) -> None:  # type: ignore[no-untyped-def]
    grids = voronoi_grids(200, km=2.0, seed=11)
    load_grids(db, grids)
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = shapely.total_bounds(grids)
    lon, lat = rng.uniform(minx, maxx, 20_000), rng.uniform(miny, maxy, 20_000)
    xy = shapely.get_coordinates(grids)
    lon, lat = np.concatenate([lon, xy[:, 0]]), np.concatenate([lat, xy[:, 1]])
    snap = GridIndex(db, cell_m=cell_m).current()
    idx = snap.locator.locate_many(lon, lat, nearest=False, snap=False).index
    got = np.where(idx >= 0, snap.codes[np.maximum(idx, 0)], "")
    _assert_same(got, postgis_covers(db, lon, lat), lon, lat)


def test_overlapping_grids_resolve_to_the_lowest_code_like_st_covers(db) -> None:  # type: ignore[no-untyped-def]
    # Not a valid coverage (the import's topology check would flag it): the locator must stay
    # exact anyway, including a grid wholly inside another and partial overlaps.
    big = shapely.box(116.30, 39.90, 116.32, 39.92)
    inner = shapely.box(116.305, 39.905, 116.3051, 39.9051)  # ~9 m: inside one bucket
    side = shapely.box(116.31, 39.91, 116.33, 39.93)
    codes = load_grids(db, [side, inner, big])
    rng = np.random.default_rng(9)
    lon = np.concatenate([rng.uniform(116.295, 116.335, 30_000),
                          rng.uniform(116.3049, 116.3052, 2_000)])
    lat = np.concatenate([rng.uniform(39.895, 39.935, 30_000),
                          rng.uniform(39.9049, 39.9052, 2_000)])
    snap = GridIndex(db).current()
    assert not snap.locator.is_coverage
    got = _codes(db, lon, lat)
    want = postgis_covers(db, lon, lat)
    assert set(want) >= {codes[0], codes[1], codes[2]}
    _assert_same(got, want, lon, lat)


def test_sf311_points_match_st_covers_on_census_tracts(db) -> None:  # type: ignore[no-untyped-def]
    tracts = gpd.read_file(shared_file("san_francisco/sf_census_tracts_2010_with_nhood.geojson"))
    cases = pd.read_csv(shared_file("san_francisco/sf311_cases_sample.csv"))
    codes = load_grids(db, tracts.geometry.values)
    hood_of = dict(zip(codes, tracts["nhood"], strict=True))
    lon, lat = cases["Long"].to_numpy(float), cases["Lat"].to_numpy(float)
    got = _codes(db, lon, lat)
    _assert_same(got, postgis_covers(db, lon, lat), lon, lat)
    found = np.array([hood_of.get(c, "") for c in got], dtype=object)
    assert (found == cases["C.Neighborhood"].to_numpy(object)).all()


def test_locator_treats_non_finite_points_as_outside(db) -> None:  # type: ignore[no-untyped-def]
    load_grids(db, voronoi_grids(20, km=1.0, seed=2))
    loc = GridIndex(db).current().locator
    x = np.array([np.nan, 116.2001, np.inf, 116.2002])
    y = np.array([39.7001, np.nan, 39.7001, 39.7002])
    found = loc.locate_many(x, y)
    assert list(found.index[:3]) == [-1, -1, -1] and found.index[3] >= 0
    assert np.isinf(found.distance_m[:3]).all()
    assert loc.locate(float("nan"), 39.7)[0] == -1
    empty = loc.locate_many(np.array([]), np.array([]))
    assert len(empty.index) == 0
