"""Batch resolution of frames (geopandas and dask-geopandas) and files (CLI)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gridcore.cli import app
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
    out = resolve(points, Resolver(db), category="cls")
    for col in ("grid_code", "community_code", "street_code", "district_code", "department",
                "h3"):
        assert col in out.columns
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
    assert "300 points resolved (300 inside" in result.output
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
