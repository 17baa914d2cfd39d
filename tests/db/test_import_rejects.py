"""Bad input: every refused import names its row, field and reason and writes nothing."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
from shapely.geometry import Point, Polygon, box

from gridcore.errors import ImportRejected
from layers.exchange.imports import import_file, load_areas, load_grids, load_parts
from tests.support.data import shared_file
from tests.support.database import row_counts

BOWTIE = Polygon([(0, 0), (0.001, 0.001), (0.001, 0), (0, 0.001)])


def seed(engine) -> None:  # noqa: ANN001
    """A district, a street and two communities: two 1 km squares near (0.0, 0.0)."""
    load_areas(engine, gpd.GeoDataFrame(
        {"code": ["310101", "310101001", "310101001001", "310101001002"],
         "name": ["D", "S", "C1", "C2"]},
        geometry=[box(0, 0, 0.02, 0.01), box(0, 0, 0.02, 0.01), box(0, 0, 0.01, 0.01),
                  box(0.01, 0, 0.02, 0.01)], crs=4326))


def refused(engine, call, *args, **kwargs) -> ImportRejected:  # noqa: ANN001
    before = row_counts(engine)
    with pytest.raises(ImportRejected) as info:
        call(engine, *args, **kwargs)
    assert row_counts(engine) == before, "a refused import must leave the database as it was"
    return info.value


def write_geojson(path, gdf: gpd.GeoDataFrame):  # noqa: ANN001, ANN201
    gdf.to_file(path, driver="GeoJSON")
    return path


def test_invalid_polygon_repaired_row_by_row(db, tmp_path) -> None:  # noqa: ANN001
    seed(db)
    grids = gpd.GeoDataFrame({"community_code": ["310101001001", "310101001001"],
                              "name": ["ok", "bowtie"]},
                             geometry=[box(0, 0, 0.001, 0.001), BOWTIE], crs=4326)
    path = write_geojson(tmp_path / "grids.geojson", grids)
    report = import_file(db, "grids", path, on_invalid="repair")
    assert report.inserted == 2 and report.repaired == 1
    assert report.repairs[0]["row"] == 2
    assert "Self-intersection" in report.repairs[0]["reason"]
    assert "make_valid" in report.summary()


def test_invalid_polygon_rejected(db, tmp_path) -> None:  # noqa: ANN001
    seed(db)
    grids = gpd.GeoDataFrame({"community_code": ["310101001001"] * 3, "name": ["a", "b", "c"]},
                             geometry=[box(0, 0, 0.001, 0.001), box(0.001, 0, 0.002, 0.001),
                                       BOWTIE], crs=4326)
    path = write_geojson(tmp_path / "grids.geojson", grids)
    err = refused(db, import_file, "grids", path, on_invalid="reject")
    assert err.problems == [{"row": 3, "field": "geometry", "reason": err.problems[0]["reason"]}]
    assert err.problems[0]["reason"].startswith("invalid polygon: Self-intersection")
    assert "row 3" in str(err) and "nothing written" in str(err)


def test_shapefile_without_prj(db, tmp_path) -> None:  # noqa: ANN001
    seed(db)
    path = tmp_path / "grids.shp"
    gpd.GeoDataFrame({"community": ["310101001002"], "name": ["g"]},  # dBase: 10-char names
                     geometry=[box(0.01, 0, 0.011, 0.001)], crs=4326).to_file(path)
    path.with_suffix(".prj").unlink()
    err = refused(db, import_file, "grids", path, community_field="community")
    assert "declares no coordinate reference system" in str(err) and "--crs" in str(err)
    assert err.problems[0]["field"] == "crs"
    assert import_file(db, "grids", path, crs="EPSG:4326",
                       community_field="community").inserted == 1


def test_missing_column(db, tmp_path) -> None:  # noqa: ANN001
    seed(db)
    path = write_geojson(tmp_path / "grids.geojson", gpd.GeoDataFrame(
        {"community": ["310101001001"]}, geometry=[box(0, 0, 0.001, 0.001)], crs=4326))
    err = refused(db, import_file, "grids", path)
    assert "missing column 'community_code' (--community-field)" in str(err)
    assert "community" in str(err)  # lists what the file has


def test_duplicate_codes(db, tmp_path) -> None:  # noqa: ANN001
    seed(db)
    gdf = gpd.GeoDataFrame({"code": ["310101001001001", "310101001001002", "310101001001001"],
                            "name": ["a", "b", "c"]},
                           geometry=[box(0, 0, 0.001, 0.001), box(0.001, 0, 0.002, 0.001),
                                     box(0.002, 0, 0.003, 0.001)], crs=4326)
    path = write_geojson(tmp_path / "grids.geojson", gdf)
    err = refused(db, import_file, "grids", path, code_field="code")
    assert err.problems == [{"row": 3, "field": "code", "reason":
                             "duplicate code 310101001001001 (already used in row 1)"}]


def test_truncated_file(db, tmp_path) -> None:  # noqa: ANN001
    seed(db)
    full = shared_file("san_francisco/sf_analysis_neighborhoods.geojson").read_bytes()
    path = tmp_path / "cut.geojson"
    path.write_bytes(full[: len(full) // 2])
    err = refused(db, import_file, "areas", path)
    assert "cannot read cut.geojson (truncated" in str(err)
    pbf = shared_file("helsinki/Helsinki.osm.pbf").read_bytes()
    cut_pbf = tmp_path / "cut.osm.pbf"
    cut_pbf.write_bytes(pbf[: len(pbf) // 2])
    err = refused(db, import_file, "parts", cut_pbf, district="310101")
    assert "cannot read OSM file cut.osm.pbf" in str(err)


def test_wrong_length_and_parent_mismatch(db, tmp_path) -> None:  # noqa: ANN001
    seed(db)
    path = tmp_path / "areas.csv"
    path.write_text("code,name,parent_code,lon,lat\n"
                    "31010100100,short,310101001,0.001,0.001\n"
                    "310101002001,elsewhere,310101001,0.002,0.002\n"
                    "310101009001,orphan,310101009,0.003,0.003\n")
    # (the CSV holds points; areas must be polygons — reported on every row too)
    err = refused(db, import_file, "areas", path, level="community")
    by_row = {}
    for p in err.problems:
        by_row.setdefault(p["row"], []).append(p["reason"])
    assert any("'31010100100' has 11 characters; it must have 12 digits" in r
               for r in by_row[1])
    assert any("does not start with its parent street code '310101001'" in r for r in by_row[2])
    assert any("parent area 310101009 of 310101009001 does not exist" in r for r in by_row[3])
    assert all(any("expected a polygon, got a Point" in r for r in rs) for rs in by_row.values())


def test_unknown_class_and_bad_part_codes(db, tmp_path) -> None:  # noqa: ANN001
    seed(db)
    path = tmp_path / "parts.csv"
    path.write_text("code,class_code,state,lon,lat\n"
                    ",0120,intact,0.001,0.001\n"
                    ",9999,intact,0.002,0.002\n"
                    "310101012000000,0120,intact,0.003,0.003\n"
                    "3101010102000001,0120,intact,0.004,0.004\n"
                    ",0120,broken,0.005,0.005\n"
                    ",0120,intact,abc,0.006\n")
    err = refused(db, import_file, "parts", path)
    assert err.problems == [{"row": 6, "field": "lon", "reason": "'abc' is not a number"}]
    path.write_text(path.read_text().replace("abc", "0.006"))
    err = refused(db, import_file, "parts", path)
    reasons = {(p["row"], p["field"]): p["reason"] for p in err.problems}
    assert reasons[(2, "class_code")].startswith("unknown city-part class '9999'")
    assert reasons[(3, "code")] == ("city part code '310101012000000' has 15 characters; it "
                                    "must have 16 digits")
    assert reasons[(4, "code")] == ("city part code 3101010102000001 holds class 0102, but the "
                                    "row's class is 0120")
    assert reasons[(5, "state")].startswith("state 'broken' must be one of intact")
    assert len(err.problems) == 4


def test_parts_outside_every_grid_need_a_district(db) -> None:  # noqa: ANN001
    seed(db)
    load_grids(db, gpd.GeoDataFrame({"community_code": ["310101001001"]},
                                    geometry=[box(0, 0, 0.01, 0.01)], crs=4326))
    parts = gpd.GeoDataFrame({"class_code": ["0120", "0120"]},
                             geometry=[Point(0.005, 0.005), Point(5, 5)], crs=4326)
    err = refused(db, load_parts, parts)
    assert err.problems[0]["row"] == 2 and "give --district" in err.problems[0]["reason"]
    assert load_parts(db, parts, district="310102").inserted == 2


def test_grids_need_an_existing_community(db) -> None:  # noqa: ANN001
    seed(db)
    gdf = gpd.GeoDataFrame({"community_code": ["310101001009", "31010100100x"]},
                           geometry=[box(0, 0, 0.001, 0.001)] * 2, crs=4326)
    err = refused(db, load_grids, gdf)
    text_of = json.dumps(err.problems)
    assert "community 310101001009 does not exist" in text_of
    assert "must contain digits only" in text_of


def test_geodataframes_in_other_crs_are_reprojected_and_without_crs_refused(db) -> None:  # noqa: ANN001
    seed(db)
    grid = gpd.GeoDataFrame({"community_code": ["310101001001"]},
                            geometry=[box(0, 0, 0.001, 0.001)], crs=4326)
    err = refused(db, load_grids, grid.set_crs(None, allow_override=True))
    assert "no coordinate reference system" in str(err)
    report = load_grids(db, grid.to_crs(3857))
    assert report.inserted == 1
    with db.connect() as conn:
        from sqlalchemy import text

        xmax = conn.execute(text("SELECT ST_XMax(geom) FROM unit_grid")).scalar_one()
    assert xmax == pytest.approx(0.001, abs=1e-9)


def test_entities_points_and_polygons(db) -> None:  # noqa: ANN001
    from shapely.geometry import LineString

    from layers.exchange.imports import load_entities

    seed(db)
    ok = gpd.GeoDataFrame({"area": ["08", "08", "06"], "type": ["school", "campus", "patrol"]},
                          geometry=[Point(0.005, 0.005), BOWTIE, Point(0.015, 0.005)], crs=4326)
    report = load_entities(db, ok)
    assert (report.inserted, report.repaired) == (3, 1)
    assert report.repairs[0]["row"] == 2
    bad = ok.copy()
    bad.loc[2, "geometry"] = LineString([(0, 0), (0.001, 0.001)])
    bad.loc[0, "area"] = "toolongarea"
    err = refused(db, load_entities, bad, on_invalid="reject")
    reasons = {(p["row"], p["field"]): p["reason"] for p in err.problems}
    assert reasons[(1, "area")].startswith("area 'toolongarea' must be 1–8 letters or digits")
    assert reasons[(2, "geometry")].startswith("invalid polygon: Self-intersection")
    assert reasons[(3, "geometry")] == "expected a polygon, got a LineString"
