"""Export round trips and the ``gridcore import`` / ``export`` command line."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point
from sqlalchemy import text
from typer.testing import CliRunner

from gridcore.cli import app
from layers.exchange.export import export_layer
from layers.exchange.imports import import_file, load_entities
from tests.support.data import shared_file
from tests.support.database import row_counts
from tests.support.imports import load_sf

runner = CliRunner()


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "csv"])
def test_grids_round_trip(db, tmp_path, fmt) -> None:  # noqa: ANN001
    load_sf(db)
    path = tmp_path / f"grids.{fmt}"
    assert export_layer(db, "grids", path) == 195
    # importing the export again changes nothing: same codes, same geometries → all kept
    report = import_file(db, "grids", path, code_field="code")
    assert (report.kept, report.inserted, report.closed) == (195, 0, 0)


def test_parts_round_trip_csv_and_bbox(db, tmp_path) -> None:  # noqa: ANN001
    import_file(db, "parts", shared_file("helsinki/Helsinki.osm.pbf"), district="110101")
    path = tmp_path / "parts.csv"
    assert export_layer(db, "parts", path) == 3117
    df = pd.read_csv(path, dtype=str)
    assert {"code", "class_code", "h3", "lon", "lat", "attributes"} <= set(df.columns)
    assert json.loads(df["attributes"].iat[0])  # the OSM tags survive as JSON text
    with db.connect() as conn:
        stored = conn.execute(text("SELECT code, attributes, h3, grid_code FROM city_part "
                                   "ORDER BY code")).all()
    before = row_counts(db)
    report = import_file(db, "parts", path)
    assert (report.inserted, report.updated) == (0, 3117)
    assert row_counts(db)["city_part"] == before["city_part"]
    with db.connect() as conn:
        again = conn.execute(text("SELECT code, attributes, h3, grid_code FROM city_part "
                                  "ORDER BY code")).all()
    assert again == stored  # attributes unchanged: derived columns are not folded into them
    # bbox: the western half of the extract
    half = tmp_path / "west.geojson"
    n = export_layer(db, "parts", half, bbox=(24.935, 60.164, 24.944, 60.179))
    with db.connect() as conn:
        expected = conn.execute(text(
            "SELECT count(*) FROM city_part WHERE ST_X(geom) BETWEEN 24.935 AND 24.944 "
            "AND ST_Y(geom) BETWEEN 60.164 AND 60.179")).scalar_one()
    assert n == expected and 0 < n < 3117


def test_entities_never_export_restricted_attributes(db, tmp_path) -> None:  # noqa: ANN001
    gdf = gpd.GeoDataFrame({"area": ["02", "02"], "type": ["household", "household"],
                            "resident": ["Wang Fang", "Li Lei"], "phone": ["139", "138"],
                            "floors": [6, 3]},
                           geometry=[Point(121.47, 31.23), Point(121.48, 31.24)], crs=4326)
    assert load_entities(db, gdf, restricted_fields=["resident", "phone"]).inserted == 2
    with db.connect() as conn:
        row = conn.execute(text("SELECT attributes, restricted_attributes FROM "
                                "governance_entity ORDER BY code LIMIT 1")).one()
    assert row.restricted_attributes == {"resident": "Wang Fang", "phone": "139"}
    assert row.attributes == {"floors": 6}
    for fmt in ("gpkg", "geojson", "csv"):
        path = tmp_path / f"entities.{fmt}"
        result = runner.invoke(app, ["export", "entities", "--format", fmt, "-o", str(path)],
                               env={"GRIDCORE_DATABASE_URL": db.url.render_as_string(False)})
        assert result.exit_code == 0, result.output
        content = path.read_bytes()
        assert b"Wang Fang" not in content and b"139" not in content
        assert b"restricted" not in content


def test_cli_import_prints_every_problem_row(db, cli_env, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "areas.csv"
    path.write_text("code,name,wkt\n"
                    "310101,D,\"POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))\"\n"
                    "3101010011,S,\"POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))\"\n"
                    "310101,D again,\"POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))\"\n")
    before = row_counts(db)
    result = runner.invoke(app, ["import", "areas", str(path)])
    assert result.exit_code == 1
    assert "areas import rejected, nothing written" in result.output
    assert "row 2 [code]: area code '3101010011' must have 6 (district)" in result.output
    assert "row 3 [code]: duplicate code 310101 (already used in row 1)" in result.output
    assert row_counts(db) == before
    path.write_text(path.read_text().replace("3101010011", "310101001").replace(
        "310101,D again", "310102,D2"))
    result = runner.invoke(app, ["import", "areas", str(path)])
    assert result.exit_code == 0, result.output
    assert "areas: 3 inserted, 0 updated" in result.output
    departments = tmp_path / "departments.csv"
    departments.write_text("code,name,parent_code,contact\nCG,城管局,,12319\n"
                           "CG-LAMP,路灯所,CG,\nSW,水务局,XX,\n")
    result = runner.invoke(app, ["import", "departments", str(departments)])
    assert result.exit_code == 1 and "row 3 [parent_code]: parent department XX" in result.output
    departments.write_text(departments.read_text().replace(",XX,", ",,"))
    result = runner.invoke(app, ["import", "departments", str(departments)])
    assert result.exit_code == 0 and "departments: 3 inserted" in result.output


def test_cli_import_osm_parts_and_export_a_bbox(db, cli_env, tmp_path) -> None:  # noqa: ANN001
    pbf = shared_file("helsinki/Helsinki.osm.pbf")
    result = runner.invoke(app, ["import", "parts", str(pbf), "--district", "110101"])
    assert result.exit_code == 0, result.output
    assert "parts: 3117 inserted, 0 updated" in result.output
    out = tmp_path / "lamps.gpkg"
    result = runner.invoke(app, ["export", "parts", "--format", "gpkg", "--bbox",
                                 "24.935,60.164,24.944,60.179", "-o", str(out)])
    assert result.exit_code == 0, result.output
    written = gpd.read_file(out)
    assert f"{len(written)} parts written" in result.output
    assert written.geometry.x.max() <= 24.944 and len(written) > 1000
    result = runner.invoke(app, ["export", "parts", "--bbox", "1,2,3", "-o", str(out)])
    assert result.exit_code != 0


def test_cli_import_workers_assigns_grids(db, cli_env, tmp_path) -> None:  # noqa: ANN001
    load_sf(db)
    with db.connect() as conn:
        grids = [r[0] for r in conn.execute(text(
            "SELECT code FROM unit_grid WHERE gen_to IS NULL ORDER BY code LIMIT 3"))]
    path = tmp_path / "workers.csv"
    path.write_text("code,name,phone,active,grids\n"
                    f"W1,Zhang Wei,13800000001,yes,{grids[0]};{grids[1]}\n"
                    f"W2,Li Na,,no,{grids[1]}\n"
                    "W3,Wang Fang,,maybe,310101001099001\n")
    before = row_counts(db)
    result = runner.invoke(app, ["import", "workers", str(path)])
    assert result.exit_code == 1
    assert "row 3 [active]: active 'maybe' must be yes or no" in result.output
    assert "row 3 [grids]: unit grid 310101001099001 is not a current grid" in result.output
    assert row_counts(db) == before
    path.write_text(path.read_text().replace("maybe,310101001099001", "yes,"))
    result = runner.invoke(app, ["import", "workers", str(path)])
    assert result.exit_code == 0 and "workers: 3 inserted" in result.output, result.output
    with db.connect() as conn:
        assigned = dict(conn.execute(text(
            "SELECT code, worker_codes FROM unit_grid WHERE code = ANY(:c) AND gen_to IS NULL"),
            {"c": grids}).all())
        active = dict(conn.execute(text("SELECT code, active FROM grid_worker")).all())
    assert assigned == {grids[0]: ["W1"], grids[1]: ["W1", "W2"], grids[2]: []}
    assert active == {"W1": True, "W2": False, "W3": True}
