"""Imports of real city data: SF neighbourhoods and tracts, Paris quartiers, Helsinki OSM."""

from __future__ import annotations

import json
from collections import Counter

import geopandas as gpd
import pytest
from sqlalchemy import text

from layers.exchange.imports import import_file, load_areas, load_grids, load_parts, read_file
from tests.support.data import shared_file
from tests.support.imports import SF_STREET, load_sf, sf_neighbourhoods, sf_parents, sf_tracts

# helsinki_city_parts_points.geojson category → class of gridcore/data/osm_part_map.csv
CATEGORY_CLASS = {"tree": "0402", "crossing": "0206", "street_lamp": "0120",
                  "surveillance_camera": "0601", "bench": "0313", "traffic_signals": "0204",
                  "bus_stop": "0201", "vending_machine": "0310", "fire_hydrant": "0117",
                  "waste_basket": "0304", "bicycle_parking": "0215", "post_box": "0122",
                  "toilets": "0301", "waste_disposal": "0305", "street_cabinet": "0115",
                  "charging_station": "0125", "recycling": "0306"}
MANHOLE_CLASSES = {"0101", "0102", "0103", "0105", "0106", "0107", "0110", "0111", "0113"}


def scalar(engine, sql: str, **params):  # noqa: ANN001, ANN201
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_sf_neighbourhoods_and_tracts(db) -> None:  # noqa: ANN001
    hoods = sf_neighbourhoods()
    parents = load_areas(db, sf_parents(hoods))
    assert (parents.inserted, parents.updated) == (2, 0)
    report = load_areas(db, hoods, level="community")
    assert (report.inserted, report.repaired) == (41, 0)
    assert scalar(db, "SELECT count(*) FROM admin_area WHERE level = 'community' "
                      "AND parent_code = :s", s=SF_STREET) == 41
    tracts = sf_tracts(hoods)
    grids = load_grids(db, tracts, note="tracts")
    assert grids.inserted == 195 and grids.generation == 1
    with db.connect() as conn:
        rows = conn.execute(text("SELECT code, community_code, area_m2, attributes->>'geoid' "
                                 "FROM unit_grid WHERE gen_to IS NULL")).all()
    assert len(rows) == 195
    assert all(code[:12] == community and len(code) == 15 for code, community, _, _ in rows)
    # every tract sits in its own neighbourhood's community
    expected = dict(zip(tracts["geoid"], tracts["community_code"], strict=True))
    assert all(expected[geoid] == community for _, community, _, geoid in rows)
    # area in m² on the ellipsoid, compared with the tracts' own shape_area (US survey ft²)
    by_geoid = {g: a for _, _, a, g in rows}
    ft2 = dict(zip(tracts["geoid"], tracts["shape_area"].astype(float), strict=True))
    ratios = [by_geoid[g] / (ft2[g] * 0.09290341) for g in by_geoid]
    assert min(ratios) > 0.97 and max(ratios) < 1.03
    # the same file again: same generated codes, geometry unchanged → nothing written, no new
    # generation, and the grid layer's version stays (no index or tile rebuilt for nothing)
    version = scalar(db, "SELECT version FROM layer_version WHERE layer = 'grids'")
    again = load_grids(db, tracts)
    assert (again.generation, again.kept, again.inserted, again.closed) == (1, 195, 0, 0)
    assert again.no_new_generation and "no new generation" in again.summary()
    assert scalar(db, "SELECT count(*) FROM grid_generation") == 1
    assert scalar(db, "SELECT version FROM layer_version WHERE layer = 'grids'") == version
    # the re-import of an area updates, never duplicates
    assert load_areas(db, hoods, level="community").updated == 41


def test_redrawn_grids_close_the_previous_generation(db) -> None:  # noqa: ANN001
    hoods, tracts = load_sf(db)
    one = tracts[tracts["community_code"] == hoods["code"].iat[0]].copy()
    n = len(one)
    one["geometry"] = one.geometry.buffer(0)  # same shapes, but rings re-ordered → redrawn
    one["name"] = one["name"] + " (redrawn)"
    report = load_grids(db, one, note="redraw one community")
    assert (report.inserted, report.closed, report.kept) == (n, n, 0)
    assert scalar(db, "SELECT count(*) FROM unit_grid") == 195 + n
    assert scalar(db, "SELECT count(*) FROM unit_grid WHERE gen_to IS NULL") == 195
    assert scalar(db, "SELECT count(*) FROM unit_grid WHERE gen_to = :g",
                  g=report.generation) == n


def test_paris_quartiers_as_communities_and_grids(db, tmp_path) -> None:  # noqa: ANN001
    paris = read_file(shared_file("paris/paris_districts.geojson"), "areas")
    city = paris.geometry.union_all()
    load_areas(db, gpd.GeoDataFrame({"code": ["750101", "750101001"],
                                     "name": ["Paris", "Paris centre"]},
                                    geometry=[city, city], crs=4326))
    paris["code"] = [f"750101001{i:03d}" for i in paris["id"]]
    assert load_areas(db, paris, name_field="district_name").inserted == 80
    # each quartier is also one grid of its community (codes generated: serial 001)
    paris["community_code"] = paris["code"]
    path = tmp_path / "paris_grids.gpkg"
    paris.drop(columns=["code"]).to_crs(2154).to_file(path)  # Lambert-93 in, 4326 stored
    report = import_file(db, "grids", path, name_field="district_name")
    assert report.inserted == 80
    assert scalar(db, "SELECT count(*) FROM unit_grid WHERE code LIKE '%001'") == 80
    assert scalar(db, "SELECT ST_SRID(geom) FROM unit_grid LIMIT 1") == 4326
    total = scalar(db, "SELECT sum(area_m2) FROM unit_grid") / 1e6
    assert abs(total - paris.to_crs(2154).area.sum() / 1e6) < 0.1  # Paris: 105.4 km²
    assert scalar(db, "SELECT population FROM (SELECT (attributes->>'population')::int AS "
                      "population FROM unit_grid WHERE name = 'Halles') t") == 8984


def test_helsinki_osm_parts_by_class(db) -> None:  # noqa: ANN001
    pbf = shared_file("helsinki/Helsinki.osm.pbf")
    reference = gpd.read_file(shared_file("helsinki/helsinki_city_parts_points.geojson"))
    report = import_file(db, "parts", pbf, district="110101")
    assert report.inserted == 3117 == len(reference)
    with db.connect() as conn:
        stored = dict(conn.execute(text("SELECT source_id, class_code FROM city_part")).all())
        counts = dict(conn.execute(text(
            "SELECT class_code, count(*) FROM city_part GROUP BY 1")).all())
        lamp = conn.execute(text("SELECT code, h3, attributes, source FROM city_part "
                                 "WHERE class_code = '0120' ORDER BY code LIMIT 1")).one()
    # per class: the data README's figures
    assert counts["0120"] == 586 and counts["0117"] == 37 and counts["0402"] == 649
    assert counts["0206"] == 620 and counts["0601"] == 220 and counts["0313"] == 162
    assert sum(counts[c] for c in MANHOLE_CLASSES if c in counts) == 397
    # node by node: the class equals the reference category (manholes: any manhole class)
    for osm_id, category in zip(reference["osm_id"], reference["category"], strict=True):
        cls = stored[f"node/{osm_id}"]
        assert cls in MANHOLE_CLASSES if category == "manhole" else cls == CATEGORY_CLASS[category]
    manholes = Counter(json.loads(t)["manhole"] if isinstance(t, str) else t["manhole"]
                       for t in reference.loc[reference["category"] == "manhole", "tags"])
    assert counts["0110"] == manholes["heat"]
    assert lamp.code == "1101010120000001" and lamp.source == "osm"
    assert lamp.attributes["highway"] == "street_lamp" and lamp.h3.startswith("8a")
    # re-import: the same rows are updated (by source id), none added
    again = import_file(db, "parts", pbf, district="110101")
    assert (again.inserted, again.updated) == (0, 3117)
    assert scalar(db, "SELECT count(*) FROM city_part") == 3117


def test_parts_get_their_grid_and_continue_serials(db, tmp_path) -> None:  # noqa: ANN001
    hoods, tracts = load_sf(db)
    cases = read_file(shared_file("san_francisco/sf311_cases_sample.csv"), "parts",
                      lon_field="Long", lat_field="Lat").head(300)
    cases["class_code"] = "0120"
    report = load_parts(db, cases[["class_code", "geometry"]])
    assert report.inserted == 300
    with db.connect() as conn:
        rows = conn.execute(text(
            "SELECT p.code, p.grid_code, g.code FROM city_part p LEFT JOIN unit_grid g "
            "ON g.gen_to IS NULL AND ST_Covers(g.geom, p.geom)")).all()
    assert all(grid is not None and grid == located for _, grid, located in rows)
    assert all(code[:6] == "310101" for code, _, _ in rows)
    more = load_parts(db, cases[["class_code", "geometry"]].head(5))
    assert more.inserted == 5
    assert scalar(db, "SELECT max(code) FROM city_part") == "3101010120000305"


@pytest.mark.parametrize("suffix", [".geojson", ".shp", ".csv"])
def test_formats_round_into_the_same_rows(db, tmp_path, suffix) -> None:  # noqa: ANN001
    hoods = sf_neighbourhoods()
    load_areas(db, sf_parents(hoods))
    pts = hoods.head(5).copy()
    pts["geometry"] = pts.geometry.representative_point()
    pts = pts.rename(columns={"name": "label"})
    pts["area"] = "06"
    pts["type"] = "patrol point"
    path = tmp_path / f"points{suffix}"
    if suffix == ".csv":
        pts.assign(lon=pts.geometry.x, lat=pts.geometry.y).drop(columns="geometry").to_csv(
            path, index=False)
    else:
        pts.to_crs(3857).to_file(path)
    report = import_file(db, "entities", path, name_field="label")
    assert report.inserted == 5
    assert scalar(db, "SELECT count(*) FROM governance_entity WHERE name <> ''") == 5
    assert abs(scalar(db, "SELECT ST_X(geom) FROM governance_entity ORDER BY code LIMIT 1")
               - pts.geometry.x.iat[0]) < 1e-6 or suffix != ".csv"
