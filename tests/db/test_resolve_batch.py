"""Batch resolution of frames (geopandas and dask-geopandas) and files (CLI)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gridcore.cli import app
from gridcore.errors import ValidationError
from layers.grids.resolver import Resolver
from spatial import crs
from spatial.batch import resolve
from tests.support.data import shared_file
from tests.support.grids import load_grids


@pytest.fixture
def sf(db):  # type: ignore[no-untyped-def]
    hoods = gpd.read_file(shared_file("san_francisco/sf_analysis_neighborhoods.geojson"))
    cases = pd.read_csv(shared_file("san_francisco/sf311_cases_sample.csv"))
    codes = load_grids(db, hoods.geometry.values, names=list(hoods["nhood"]))
    points = gpd.GeoDataFrame(cases[["CaseID", "C.Neighborhood", "Category"]],
                              geometry=gpd.points_from_xy(cases["Long"], cases["Lat"]),
                              crs="EPSG:4326")
    return points, dict(zip(codes, hoods["nhood"], strict=True))


def test_geodataframe_gets_the_columns(db, sf) -> None:  # type: ignore[no-untyped-def]
    points, name_of = sf
    with db.begin() as conn:
        conn.execute(text("INSERT INTO department (code, name) VALUES ('DPW', 'Public Works')"))
        conn.execute(text("INSERT INTO dispatch_rule (category_key, area_level, area_code, "
                          "department_code) VALUES ('E0102', 'city', NULL, 'DPW')"))
    points["cls"] = np.where(points["Category"] == "Street and Sidewalk Cleaning", "E0102",
                             None)
    out = resolve(points, Resolver(db), category="cls", h3=True)
    for col in ("grid_code", "community_code", "street_code", "district_code", "department",
                "h3"):
        assert col in out.columns
    assert "h3" not in resolve(points.iloc[:5], Resolver(db)).columns  # only when asked
    assert out["inside"].all()
    assert (out["grid_code"].map(name_of) == out["C.Neighborhood"]).all()
    assert (out["street_code"] == out["grid_code"].str[:9]).all()
    assert (out["district_code"] == "110101").all()
    assert ((out["department"] == "DPW") == (out["cls"] == "E0102")).all()
    assert out["h3"].str.len().eq(15).all()
    # Projected input is converted first; GCJ-02 coordinates need the datum named.
    same = resolve(points.to_crs("EPSG:7131"), Resolver(db))
    assert (same["grid_code"] == out["grid_code"]).all()
    gx, gy = crs.from_wgs84_many(points.geometry.x, points.geometry.y, "GCJ-02")
    assert np.allclose(gx, points.geometry.x)  # SF is outside China: identity
    empty = resolve(points.iloc[:0], Resolver(db))
    assert len(empty) == 0 and "grid_code" in empty.columns


def test_dask_geodataframe_resolves_partition_by_partition(db, sf) -> None:  # type: ignore[no-untyped-def]
    import dask_geopandas
    points, name_of = sf
    lazy = resolve(dask_geopandas.from_geopandas(points, npartitions=4), Resolver(db))
    assert lazy.npartitions == 4
    out = lazy.compute()
    assert len(out) == len(points)
    assert (out["grid_code"].map(name_of) == out["C.Neighborhood"]).all()


def test_cli_resolves_a_csv_and_a_geojson(db, sf, cli_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    points, name_of = sf
    src = tmp_path / "cases.csv"
    head = points.iloc[:300]
    pd.DataFrame({"id": head["CaseID"], "lon": head.geometry.x, "lat": head.geometry.y,
                  "hood": head["C.Neighborhood"]}).to_csv(src, index=False)
    out = tmp_path / "resolved.csv"
    result = CliRunner().invoke(app, ["resolve", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "300 points resolved: 300 inside a grid, 0 snapped" in result.output
    assert "EPSG:4326 assumed: the file declares none" in result.output
    got = pd.read_csv(out, dtype=str)
    assert (got["grid_code"].map(name_of) == got["hood"]).all()
    geo = tmp_path / "resolved.geojson"
    result = CliRunner().invoke(app, ["resolve", str(src), "-o", str(geo)])
    assert result.exit_code == 0, result.output
    assert len(gpd.read_file(geo)) == 300


def test_cli_resolves_gcj02_coordinates_when_told(db, cli_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shapely

    from tests.support.grids import voronoi_grids

    grids = voronoi_grids(30, x0=116.38, y0=39.90, km=2.0, seed=3)
    codes = load_grids(db, grids)
    inside = shapely.point_on_surface(grids)
    gx, gy = crs.from_wgs84_many(shapely.get_x(inside), shapely.get_y(inside), "GCJ-02")
    src = tmp_path / "amap.csv"
    pd.DataFrame({"lng": gx, "lat": gy}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["resolve", str(src), "-o", str(out), "--crs", "GCJ-02",
                                      "--lon-field", "lng"])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, dtype=str)
    assert list(got["grid_code"]) == codes
    assert np.allclose(got["lon"].astype(float), gx, atol=1e-8)  # the input is kept as given


@pytest.fixture
def squares(db):  # type: ignore[no-untyped-def]
    """Four 1 km squares in Beijing (codes ascending west → east, south → north)."""
    import shapely

    boxes = [shapely.box(116.30 + 0.0117 * i, 39.90 + 0.009 * j, 116.30 + 0.0117 * (i + 1),
                         39.90 + 0.009 * (j + 1)) for j in range(2) for i in range(2)]
    return load_grids(db, boxes)


def test_snapped_far_and_nearest(db, squares) -> None:  # type: ignore[no-untyped-def]
    m = 1 / 111_320  # a metre of latitude in degrees
    south = 39.90
    pts = gpd.GeoDataFrame({"name": ["in", "10 m out", "500 m out"]}, geometry=gpd.points_from_xy(
        [116.305, 116.305, 116.305], [39.905, south - 10 * m, south - 500 * m]),
        crs="EPSG:4326")
    out = resolve(pts, Resolver(db))
    assert list(out["grid_code"].fillna("")) == [squares[0], squares[0], ""]
    assert list(out["snapped"]) == [False, True, False]
    assert list(out["inside"]) == [True, False, False]  # a snapped point is not inside
    assert out["distance_m"].iloc[0] == 0 and 9.9 < out["distance_m"].iloc[1] < 10.1
    assert np.isnan(out["distance_m"].iloc[2])  # beyond the snap distance: not measured
    assert "nearest_grid_code" not in out.columns
    assert out.attrs["gridcore_resolve"] | {"grid_version": None} == {
        "crs": "EPSG:4326", "snap_m": 30.0, "points": 3, "covered": 1, "snapped": 1,
        "outside": 1, "nearest_measured": False, "grid_version": None}
    assert list(out.columns[:3]) == ["name", "geometry", "grid_code"]
    with_h3 = resolve(pts, Resolver(db), h3=True)
    assert list(with_h3.columns).index("h3") == list(with_h3.columns).index("department") + 1
    asked = resolve(pts, Resolver(db), nearest=True)
    assert 499 < asked["distance_m"].iloc[2] < 501
    assert list(asked["nearest_grid_code"]) == [squares[0]] * 3
    assert list(asked["grid_code"].fillna("")) == list(out["grid_code"].fillna(""))


def test_frame_crs_is_used_or_said(db, squares) -> None:  # type: ignore[no-untyped-def]
    import pyproj

    xy = ([116.305, 116.315], [39.905, 39.915])
    wgs = gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy), crs="EPSG:4326")
    want = list(resolve(wgs, Resolver(db))["grid_code"])
    assert want == [squares[0], squares[3]]
    # no CRS: taken as WGS 84, with a warning and in the summary
    bare = wgs.set_crs(None, allow_override=True)
    with pytest.warns(UserWarning, match="no CRS"):
        out = resolve(bare, Resolver(db))
    assert list(out["grid_code"]) == want
    assert "assumed" in out.attrs["gridcore_resolve"]["crs"]
    # a projected CRS with an EPSG code, and one without any
    assert list(resolve(wgs.to_crs("EPSG:4549"), Resolver(db))["grid_code"]) == want
    custom = pyproj.CRS.from_proj4("+proj=tmerc +lon_0=116.4 +lat_0=39.9 +k=1 +x_0=500 "
                                   "+y_0=700 +ellps=GRS80 +units=m +no_defs")
    out = resolve(wgs.to_crs(custom), Resolver(db))
    assert list(out["grid_code"]) == want and "tmerc" in out.attrs["gridcore_resolve"]["crs"]
    # GCJ-02 coordinates labelled WGS 84 (the usual case): crs= names the real datum
    gx, gy = crs.from_wgs84_many(np.array(xy[0]), np.array(xy[1]), "GCJ-02")
    mars = gpd.GeoDataFrame(geometry=gpd.points_from_xy(gx, gy), crs="EPSG:4326")
    out = resolve(mars, Resolver(db), crs="GCJ-02")
    assert list(out["grid_code"]) == want
    assert out.attrs["gridcore_resolve"]["crs"] == "GCJ-02 (given; the frame says EPSG:4326)"
    # a projected frame and a contradicting crs=: refused, not guessed
    with pytest.raises(ValidationError, match="declares EPSG:4549"):
        resolve(wgs.to_crs("EPSG:4549"), Resolver(db), crs="GCJ-02")


def test_other_geometries_and_bad_rows(db, squares) -> None:  # type: ignore[no-untyped-def]
    import shapely

    shapes = gpd.GeoDataFrame(geometry=[shapely.box(116.301, 39.901, 116.302, 39.902),
                                        shapely.LineString([(116.313, 39.913),
                                                            (116.314, 39.914)]),
                                        shapely.MultiPoint([(116.305, 39.915)])],
                              crs="EPSG:4326")
    assert list(resolve(shapes, Resolver(db))["grid_code"]) == [squares[0], squares[3],
                                                                squares[2]]
    holes = gpd.GeoDataFrame(geometry=[shapely.Point(116.305, 39.905), shapely.Point(),
                                       None], crs="EPSG:4326")
    with pytest.raises(ValidationError, match="2 point.*first at index 1"):
        resolve(holes, Resolver(db))
    with pytest.raises(ValidationError, match="no column 'kind'"):
        resolve(holes.iloc[:1], Resolver(db), category="kind")
    with pytest.raises(ValidationError, match="H3 resolution"):
        resolve(holes.iloc[:1], Resolver(db), h3_resolution=16)


def test_a_big_frame_equals_the_sum_of_its_parts(db) -> None:  # type: ignore[no-untyped-def]
    # Above h3lattice.MIN_POINTS (H3 cells shared through the lattice): the same answers as
    # small frames, which ask h3 point by point.
    import shapely

    from demo.street_grids import street_grids
    from spatial.h3lattice import MIN_POINTS

    grids = street_grids(300, seed=4)
    load_grids(db, grids)
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = shapely.total_bounds(grids)
    n = MIN_POINTS + 70_000
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(rng.uniform(minx, maxx, n),
                                                      rng.uniform(miny, maxy, n)),
                           crs="EPSG:4326")
    whole = resolve(pts, Resolver(db), h3=True)
    parts = pd.concat([resolve(pts.iloc[i:i + 30_000], Resolver(db), h3=True)
                       for i in range(0, n, 30_000)])
    for col in ("grid_code", "street_code", "h3", "snapped", "distance_m"):
        pd.testing.assert_series_equal(whole[col], parts[col])
    assert whole["snapped"].any() and (~whole["inside"]).any()


def test_a_snapped_point_is_said_alike_by_the_frame_the_cli_and_the_api(
        squares, client, cli_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """inside: false, snapped: true — in the batch frame, /resolve and the CLI's summary."""
    m = 1 / 111_320
    lons, lats = [116.305, 116.305, 116.305], [39.905, 39.90 - 10 * m, 39.90 - 500 * m]
    frame = resolve(gpd.GeoDataFrame(geometry=gpd.points_from_xy(lons, lats), crs=4326),
                    client.app.state.resolver)
    api = [client.get("/resolve", params={"lon": x, "lat": y}).json()
           for x, y in zip(lons, lats, strict=True)]
    assert list(frame["inside"]) == [a["inside"] for a in api] == [True, False, False]
    assert list(frame["snapped"]) == [bool(a["grid"] and a["grid"]["snapped"]) for a in api]
    assert api[1]["grid"]["grid_code"] == frame["grid_code"].iloc[1] == squares[0]
    src = tmp_path / "pts.csv"
    pd.DataFrame({"lon": lons, "lat": lats}).to_csv(src, index=False)
    result = CliRunner().invoke(app, ["resolve", str(src), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    assert "3 points resolved: 1 inside a grid, 1 snapped to the nearest grid (within 30 m), " \
           "1 outside" in result.output
    assert list(pd.read_csv(tmp_path / "o.csv")["inside"]) == [True, False, False]
    # a file it cannot read: the reader's words, not an import's
    bad = tmp_path / "bad.csv"
    bad.write_text("lon,lat\nx,1\n")
    result = CliRunner().invoke(app, ["resolve", str(bad), "-o", str(tmp_path / "b.csv")])
    assert result.exit_code == 1
    assert "cannot resolve" in result.output and "'x' is not a number" in result.output
    assert "import" not in result.output and "parts file" not in result.output


def test_serve_refuses_before_it_says_serving(cli_env) -> None:  # type: ignore[no-untyped-def]
    import os
    import socket
    import subprocess
    import sys

    from tests.support.data import REPO

    env = {**os.environ, **cli_env, "GRIDCORE_ENV": "production", "GRIDCORE_SECRET_KEY": ""}
    done = subprocess.run([sys.executable, "-m", "gridcore.cli", "serve", "--port", "1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "serving on" not in done.stdout
    assert "GRIDCORE_SECRET_KEY" in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env["GRIDCORE_ENV"] = "development"
        done = subprocess.run([sys.executable, "-m", "gridcore.cli", "serve", "--port",
                               str(port)], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=120)
    assert done.returncode != 0 and "serving on" not in done.stdout
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
