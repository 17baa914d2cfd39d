"""Imports and the CRS: GCJ-02 files stored where their WGS 84 originals are, the declared CRS
against --crs, coordinates that cannot be in the CRS they are said to be in, and what was
assumed said in the summary (issue 19, items 1 and 4)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text
from typer.testing import CliRunner

from gridcore.cli import app
from layers.exchange.imports import load_areas
from layers.grids.resolver import Resolver
from spatial import crs
from spatial.batch import resolve
from spatial.measure import to_local_metres
from tests.support.data import shared_file
from tests.support.database import row_counts
from tests.support.imports import load_sf

DISTRICT, STREET = "310101", "310101001"


def _gcj02_copy(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The same features with every vertex moved into GCJ-02 (the ground truth is the
    original), labelled WGS 84 as Chinese web-map data routinely is."""
    def shift(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(crs.from_wgs84_many(xy[:, 0], xy[:, 1], "GCJ-02"))

    return gdf.set_geometry(shapely.transform(gdf.geometry.to_numpy(), shift), crs=4326)


def _current_grids(db) -> dict[str, shapely.Geometry]:  # noqa: ANN001
    with db.connect() as conn:
        rows = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM unit_grid "
                                 "WHERE gen_to IS NULL ORDER BY code")).all()
    return {r[0]: shapely.from_wkb(bytes(r[1])) for r in rows}


def _points_near_edges(geoms: list, n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Points within 10–300 m of district borders (but never within 2 m), inside the city."""
    rng = np.random.default_rng(seed)
    city = shapely.union_all(geoms)
    lines = shapely.union_all([g.boundary for g in geoms]).difference(city.boundary)
    xs, ys = [], []
    lat0 = shapely.get_y(city.centroid)
    m = 1 / (111_320 * np.cos(np.radians(lat0)))
    while len(xs) < n:
        at = shapely.line_interpolate_point(lines, rng.uniform(0, lines.length, 4 * n),
                                            normalized=False)
        dist = rng.uniform(10, 300, len(at)) * m
        angle = rng.uniform(0, 2 * np.pi, len(at))
        x, y = shapely.get_x(at) + dist * np.cos(angle), shapely.get_y(at) + dist * np.sin(angle)
        pts = shapely.points(x, y)
        keep = shapely.contains(city, pts) & (shapely.distance(lines, pts) > 2 * m)
        xs.extend(x[keep].tolist())
        ys.extend(y[keep].tolist())
    return np.array(xs[:n]), np.array(ys[:n])


def test_a_gcj02_file_is_stored_where_its_wgs84_original_is(db, cli_env, tmp_path) -> None:  # noqa: ANN001
    """Shanghai's districts as communities and grids: once from a WGS 84 file, once from its
    GCJ-02 copy (labelled WGS 84, read with --crs GCJ-02 --override-crs). The stored polygons
    agree within 0.5 m and 1,500 points near the borders resolve to the same grids."""
    original = gpd.read_file(shared_file("china/shanghai_districts.geojson"))[["name", "geometry"]]
    original = original[original.geometry.notna()].reset_index(drop=True)
    wgs = tmp_path / "districts_wgs84.geojson"
    original.to_file(wgs, driver="GeoJSON")
    gcj = tmp_path / "districts_gcj02.geojson"
    _gcj02_copy(original).to_file(gcj, driver="GeoJSON")
    city = shapely.union_all(original.geometry.to_numpy())
    load_areas(db, gpd.GeoDataFrame({"code": [DISTRICT, STREET], "name": ["上海", "上海街道"],
                                     "parent_code": [None, DISTRICT]},
                                    geometry=[city, city], crs=4326))
    runner = CliRunner()
    # communities without codes: generated under the street, in map reading order
    done = runner.invoke(app, ["import", "areas", str(wgs), "--parent", STREET,
                               "--generate-codes"])
    assert done.exit_code == 0, done.output
    assert "16 inserted" in done.output and "as the file declares" in done.output
    with db.connect() as conn:
        communities = dict(conn.execute(text(
            "SELECT name, code FROM admin_area WHERE level = 'community'")).all())
    assert sorted(communities.values()) == [f"{STREET}{i:03d}" for i in range(1, 17)]
    # the northernmost district gets the first serial
    north = int(np.argmax(shapely.get_y(shapely.centroid(original.geometry.to_numpy()))))
    assert communities[original["name"][north]] == f"{STREET}001"

    def grids_file(path, out):  # noqa: ANN001, ANN202
        frame = gpd.read_file(path)
        frame["community_code"] = frame["name"].map(communities)
        frame.to_file(out, driver="GeoJSON")
        return out

    done = runner.invoke(app, ["import", "grids", str(grids_file(wgs, tmp_path / "g1.geojson"))])
    assert done.exit_code == 0, done.output
    truth = _current_grids(db)
    x, y = _points_near_edges(list(truth.values()), 1_500)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=4326)
    before = resolve(pts, Resolver(db))["grid_code"].tolist()
    assert len(set(before)) >= 14 and None not in before  # Chongming island borders none

    shifted = grids_file(gcj, tmp_path / "g2.geojson")
    counts = row_counts(db)
    refused = runner.invoke(app, ["import", "grids", str(shifted), "--crs", "GCJ-02"])
    assert refused.exit_code == 1
    assert "declares EPSG:4326 but --crs GCJ-02" in refused.output
    assert "--override-crs" in refused.output and "Traceback" not in refused.output
    assert row_counts(db) == counts  # nothing written
    done = runner.invoke(app, ["import", "grids", str(shifted), "--crs", "GCJ-02",
                               "--override-crs"])
    assert done.exit_code == 0, done.output
    assert "CRS GCJ-02, given with --crs --override-crs instead of the EPSG:4326" in done.output
    stored = _current_grids(db)
    assert stored.keys() == truth.keys()
    worst = max(shapely.hausdorff_distance(*to_local_metres(np.array([truth[c], stored[c]])))
                for c in truth)
    assert worst < 0.5
    after = resolve(pts, Resolver(db))["grid_code"].tolist()
    assert after == before
    # without --override-crs the GCJ-02 copy would have been stored ~500 m off
    raw = _gcj02_copy(original)
    moved = shapely.hausdorff_distance(*to_local_metres(np.array([
        original.geometry[0], raw.geometry[0]])))
    assert moved > 300


def test_csv_points_in_gcj02_and_bd09(db, tmp_path) -> None:  # noqa: ANN001
    """A CSV declares no CRS: --crs names it (GCJ-02, BD-09), without --override-crs."""
    from layers.exchange.imports.reading import read_file

    lon, lat = np.array([121.47, 121.5]), np.array([31.23, 31.2])
    for datum in ("GCJ-02", "BD-09"):
        x, y = crs.from_wgs84_many(lon, lat, datum)
        path = tmp_path / f"{datum}.csv"
        pd.DataFrame({"lon": x, "lat": y, "class_code": "0120"}).to_csv(path, index=False)
        gdf = read_file(path, "parts", datum)
        assert np.allclose(gdf.geometry.x, lon, atol=1e-8)
        assert np.allclose(gdf.geometry.y, lat, atol=1e-8)
        assert gdf.attrs["gridcore_crs"] == f"CRS {datum}, given with --crs (the file " \
                                           "declares none)"


def test_degrees_said_of_state_plane_coordinates_is_a_clear_error(db, cli_env, tmp_path) -> None:  # noqa: ANN001
    """SF tracts in California state plane zone 3 (US feet) in a Shapefile without .prj:
    --crs EPSG:4326 (the refusal's own example) is refused naming the row and saying what
    is wrong, no traceback, nothing written; the right CRS imports."""
    hoods, tracts = load_sf(db)
    tracts = tracts.to_crs(2227)[["community_code", "name", "geometry"]].rename(
        columns={"community_code": "community"})  # a Shapefile's names have 10 characters
    shp = tmp_path / "tracts.shp"
    tracts.to_file(shp)
    shp.with_suffix(".prj").unlink()
    counts = row_counts(db)
    runner = CliRunner()
    missing = runner.invoke(app, ["import", "grids", str(shp)])
    assert missing.exit_code == 1 and "declares no coordinate reference system" in missing.output
    wrong = runner.invoke(app, ["import", "grids", str(shp), "--crs", "EPSG:4326",
                                "--community-field", "community"])
    assert wrong.exit_code == 1
    assert "these coordinates look like metres/feet, not degrees; is the CRS right?" in \
        wrong.output
    assert "row 1 [geometry]" in wrong.output and "Traceback" not in wrong.output
    assert row_counts(db) == counts
    far = runner.invoke(app, ["import", "grids", str(shp), "--crs", "EPSG:4549",
                              "--community-field", "community"])
    assert far.exit_code == 1 and "outside the area of use" in far.output
    right = runner.invoke(app, ["import", "grids", str(shp), "--crs", "EPSG:2227",
                                "--community-field", "community"])
    assert right.exit_code == 0, right.output
    assert "CRS EPSG:2227, given with --crs (the file declares none)" in right.output


def test_a_part_takes_its_own_grids_district_and_snaps_as_resolve_does(db, cli_env,
                                                                       tmp_path) -> None:  # noqa: ANN001
    """Two districts side by side; parts in each, one 20 m outside (snapped, reported) and
    one 500 m outside. --district codes only the one in no grid."""
    from layers.exchange.imports import load_grids

    west, east = shapely.box(116.30, 39.90, 116.31, 39.91), shapely.box(116.31, 39.90, 116.32,
                                                                       39.91)
    areas = gpd.GeoDataFrame({
        "code": ["110101", "110102", "110101001", "110102001", "110101001001", "110102001001"],
        "name": ["W", "E", "W street", "E street", "W community", "E community"]},
        geometry=[west, east, west, east, west, east], crs=4326)
    load_areas(db, areas)
    grids = load_grids(db, gpd.GeoDataFrame(
        {"community_code": ["110101001001", "110102001001"]}, geometry=[west, east], crs=4326))
    assert grids.inserted == 2
    m = 1 / 111_320
    pts = pd.DataFrame({"lon": [116.305, 116.315, 116.315, 116.305],
                        "lat": [39.905, 39.905, 39.91 + 20 * m, 39.90 - 500 * m],
                        "class_code": "0120", "height": ["12.5", "8", "", "10"],
                        "ref": ["007", "12", "13", "14"]})
    path = tmp_path / "lamps.csv"
    pts.to_csv(path, index=False)
    runner = CliRunner()
    refused = runner.invoke(app, ["import", "parts", str(path)])
    assert refused.exit_code == 1
    assert "row 4 [code]" in refused.output and "give --district" in refused.output
    done = runner.invoke(app, ["import", "parts", str(path), "--district", "110109"])
    assert done.exit_code == 0, done.output
    assert "1 snapped to the nearest grid" in done.output
    assert "row 3: 20.0 m outside every grid" in done.output
    assert "took read" in done.output and "grids located" in done.output  # its phases
    with db.connect() as conn:
        rows = conn.execute(text("SELECT code, grid_code, attributes FROM city_part "
                                 "ORDER BY code")).all()
    by_grid = {r.grid_code: r.code for r in rows}
    assert sorted(r.code[:6] for r in rows) == ["110101", "110102", "110102", "110109"]
    assert all(code[:6] == grid[:6] for grid, code in by_grid.items() if grid)
    assert by_grid[None][:6] == "110109"  # the only part in no grid
    # numeric attributes of a CSV are numbers; a column with a leading zero stays text
    attrs = [r.attributes for r in rows]
    assert sorted(a.get("height", -1) for a in attrs) == [-1, 8, 10, 12.5]
    assert {type(a["ref"]) for a in attrs} == {str}


def test_csv_wkt_column_of_any_case_and_geopackage_dates(db, tmp_path) -> None:  # noqa: ANN001
    from layers.exchange.export import export_layer
    from layers.exchange.imports import import_file

    hoods = gpd.read_file(shared_file("san_francisco/sf_analysis_neighborhoods.geojson"))
    hoods = hoods.iloc[:3].rename(columns={"nhood": "name"})
    hoods["code"] = [f"{STREET}{i:03d}" for i in range(1, 4)]
    city = shapely.union_all(hoods.geometry.to_numpy())
    load_areas(db, gpd.GeoDataFrame({"code": [DISTRICT, STREET], "name": ["SF", "SF street"],
                                     "parent_code": [None, DISTRICT]},
                                    geometry=[city, city], crs=4326))
    path = tmp_path / "hoods.csv"
    hoods.to_file(path, driver="CSV", GEOMETRY="AS_WKT")  # GDAL names the column WKT
    assert path.read_text().startswith("WKT,")
    report = import_file(db, "areas", path, level="community")
    assert report.inserted == 3 and "EPSG:4326 assumed" in (report.crs or "")
    bad = tmp_path / "bad.csv"
    bad.write_text('Wkt,code,name\n"POLYGON((0 0,1 0,1 1,0 0))",310101001004,x\n'
                   "not wkt,310101001005,y\n")
    from gridcore.errors import ImportRejected

    with pytest.raises(ImportRejected) as refused:
        import_file(db, "areas", bad, level="community")
    assert refused.value.problems[0] == {"row": 2, "field": "Wkt",
                                         "reason": "'not wkt' is not WKT"}
    # a GeoPackage date comes back as a date: stored as YYYY-MM-DD, exported as DATE
    entities = gpd.GeoDataFrame({"area": ["A1"], "type": "school", "name": ["Kluuvi"],
                                 "opened": [pd.Timestamp("2019-05-01").date()]},
                                geometry=[shapely.Point(-122.42, 37.77)], crs=4326)
    entities["opened"] = entities["opened"].astype(pd.ArrowDtype(__import__("pyarrow").date32()))
    gpkg = tmp_path / "entities.gpkg"
    entities.to_file(gpkg, driver="GPKG", use_arrow=True)
    import_file(db, "entities", gpkg)
    with db.connect() as conn:
        opened = conn.execute(text("SELECT attributes->>'opened' FROM governance_entity")
                              ).scalar_one()
    assert opened == "2019-05-01"
    from layers.exchange.imports import load_parts

    load_parts(db, gpd.GeoDataFrame({"class_code": ["0120"], "code": ["3101010120000001"]},
                                    geometry=[shapely.Point(-122.42, 37.77)], crs=4326))
    out = tmp_path / "parts.gpkg"
    export_layer(db, "parts", out)
    import pyogrio

    info = pyogrio.read_info(out)
    types = dict(zip(info["fields"], info["ogr_types"], strict=True))
    assert types["recorded_on"] == "OFTDate" and types["changed_on"] == "OFTDate"
    geojson = tmp_path / "parts.geojson"
    export_layer(db, "parts", geojson)
    props = json.loads(geojson.read_text())["features"][0]["properties"]
    assert len(props["recorded_on"]) == 10  # YYYY-MM-DD
