"""/resolve over HTTP: hierarchy, datums, errors, batches, dispatch, freshness."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from spatial import crs
from tests.support.grids import STREET, load_grids, voronoi_grids

X0, Y0 = 116.38, 39.90


@pytest.fixture
def grids(db):  # type: ignore[no-untyped-def]
    geoms = voronoi_grids(60, x0=X0, y0=Y0, km=2.0, seed=2)
    codes = load_grids(db, geoms, workers=[(f"W{i:03d}",) for i in range(len(geoms))])
    return geoms, codes


def _inside_point(geom) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    p = shapely.point_on_surface(geom)
    return p.x, p.y


def test_get_resolve_gives_grid_hierarchy_workers_and_h3(client, grids) -> None:  # type: ignore[no-untyped-def]
    geoms, codes = grids
    x, y = _inside_point(geoms[5])
    r = client.get("/resolve", params={"lon": x, "lat": y})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["inside"] is True
    assert body["grid"]["grid_code"] == codes[5] and body["grid"]["snapped"] is False
    assert body["community"]["code"] == codes[5][:12]
    assert body["street"] == {"code": STREET, "name": "Test street"}
    assert body["district"]["code"] == "110101"
    assert body["responsible"]["worker_codes"] == ["W005"]
    assert len(body["h3"]) == 15 and body["grid_version"] > 0
    assert codes[5] in body["reason"]


def test_other_datums_resolve_to_the_same_grid(client, grids) -> None:  # type: ignore[no-untyped-def]
    geoms, codes = grids
    x, y = _inside_point(geoms[7])
    for name in ("GCJ-02", "BD-09", "EPSG:4490", "EPSG:4549"):
        cx, cy = crs.from_wgs84(x, y, name)
        body = client.get("/resolve", params={"lon": cx, "lat": cy, "crs": name}).json()
        assert body["grid"]["grid_code"] == codes[7], name
        assert abs(body["lon"] - x) < 1e-7 and abs(body["lat"] - y) < 1e-7


def test_bad_coordinates_are_precise_422s(client, grids) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/resolve", params={"lon": Y0 + 0.005, "lat": X0 + 0.005})
    assert r.status_code == 422 and "swapped" in r.json()["detail"]
    r = client.get("/resolve", params={"lon": "nan", "lat": Y0})
    assert r.status_code == 422
    r = client.get("/resolve", params={"lon": "inf", "lat": Y0})
    assert r.status_code == 422
    r = client.get("/resolve", params={"lon": 2.35, "lat": 48.85})  # Paris: far away
    assert r.status_code == 422
    body = r.json()
    assert body["type"].endswith("outside-managed-area")
    assert "wrong datum or swapped axes" in body["detail"] and body["distance_m"] > 50_000
    r = client.get("/resolve", params={"lon": X0, "lat": Y0, "crs": "EPSG:999999"})
    assert r.status_code == 422 and "unknown coordinate system" in r.json()["detail"]
    r = client.get("/resolve", params={"lon": X0, "lat": Y0, "category": "manhole"})
    assert r.status_code == 422
    r = client.get("/resolve", params={"lon": X0, "lat": Y0, "category": "P9999"})
    assert r.status_code == 422 and "unknown class 'P9999'" in r.json()["detail"]


def test_snap_within_tolerance_and_outside_beyond(client, grids) -> None:  # type: ignore[no-untyped-def]
    geoms, _ = grids
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    mid = (miny + maxy) / 2
    m = 1 / (111_320 * np.cos(np.radians(mid)))
    body = client.get("/resolve", params={"lon": maxx + 10 * m, "lat": mid}).json()
    # a snapped point has a grid but is not inside it (as the batch frame and imports say)
    assert body["inside"] is False and body["grid"]["snapped"] is True
    assert 9 < body["grid"]["distance_m"] < 11 and "snapped" in body["reason"]
    assert "outside the grids" in body["reason"]
    body = client.get("/resolve", params={"lon": maxx + 200 * m, "lat": mid}).json()
    assert body["inside"] is False and body["grid"] is None
    assert 195 < body["nearest_grid"]["distance_m"] < 205
    assert "outside the managed area" in body["reason"]
    body = client.get("/resolve", params={"lon": maxx, "lat": mid}).json()  # outer boundary
    assert body["inside"] is True and body["grid"]["snapped"] is False


def test_post_batches(client, grids) -> None:  # type: ignore[no-untyped-def]
    geoms, codes = grids
    pts = [_inside_point(g) for g in geoms[:3]]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(p)},
         "properties": {"category": "P0101"}} for p in pts]}
    body = client.post("/resolve", json=fc).json()
    assert body["count"] == 3
    assert [r["grid"]["grid_code"] for r in body["results"]] == codes[:3]
    body = client.post("/resolve", json=[{"lon": x, "lat": y} for x, y in pts]
                       + [list(pts[0]), [2.35, 48.85]]).json()
    assert body["count"] == 5 and body["results"][3]["grid"]["grid_code"] == codes[0]
    assert body["results"][4]["inside"] is False and body["results"][4]["extras"]["far"]
    gcj = [list(crs.from_wgs84(x, y, "GCJ-02")) for x, y in pts]
    body = client.post("/resolve", params={"crs": "GCJ-02"}, json=gcj).json()
    assert [r["grid"]["grid_code"] for r in body["results"]] == codes[:3]
    assert client.post("/resolve", json=[]).json()["count"] == 0
    r = client.post("/resolve", json=[[X0, Y0]] * 10_001)
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["limit"] == 10_000
    r = client.post("/resolve", content=b"[[1, 2]", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "must be JSON" in r.json()["detail"]
    r = client.post("/resolve", content=f"[[{X0}, NaN]]",
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and "non-finite" in r.json()["detail"]
    r = client.post("/resolve", json=[{"lon": X0}])
    assert r.status_code == 422 and r.json()["index"] == 0


def test_grid_change_is_seen_by_the_next_request(client, db, grids) -> None:  # type: ignore[no-untyped-def]
    geoms, codes = grids
    x, y = _inside_point(geoms[10])
    first = client.get("/resolve", params={"lon": x, "lat": y}).json()
    assert first["grid"]["grid_code"] == codes[10]
    # A redraw: the old generation is closed, one big grid replaces them all.
    load_grids(db, [shapely.box(*shapely.total_bounds(geoms))], replace=True)
    second = client.get("/resolve", params={"lon": x, "lat": y}).json()
    assert second["grid_version"] > first["grid_version"]
    assert second["grid"]["grid_code"] == f"{STREET}001001"
    with db.connect() as conn:
        new_id = conn.execute(text("SELECT id FROM unit_grid WHERE gen_to IS NULL")).scalar()
    assert second["grid"]["grid_id"] == new_id != first["grid"]["grid_id"]


def test_dispatch_rules_and_part_owner_override(client, db, grids) -> None:  # type: ignore[no-untyped-def]
    geoms, codes = grids
    with db.begin() as conn:
        conn.execute(text("INSERT INTO department (code, name) VALUES "
                          "('CITY', 'City works'), ('STREET', 'Street office'), "
                          "('GRID', 'Grid team'), ('WATER', 'Water company')"))
        conn.execute(text(
            "INSERT INTO dispatch_rule (category_key, area_level, area_code, department_code) "
            "VALUES ('P0101', 'city', NULL, 'CITY'), ('P0101', 'street', :s, 'STREET'), "
            "('P0101', 'grid', :g, 'GRID'), ('E0102', 'city', NULL, 'CITY')"),
            {"s": STREET, "g": codes[3]})
    x3, y3 = _inside_point(geoms[3])
    x4, y4 = _inside_point(geoms[4])
    r3 = client.get("/resolve", params={"lon": x3, "lat": y3, "category": "P0101"}).json()
    assert r3["responsible"]["department_code"] == "GRID"
    assert f"grid {codes[3]}" in r3["responsible"]["rule"]
    r4 = client.get("/resolve", params={"lon": x4, "lat": y4, "category": "P0101"}).json()
    assert r4["responsible"]["department_code"] == "STREET"
    assert r4["responsible"]["department_name"] == "Street office"
    e4 = client.get("/resolve", params={"lon": x4, "lat": y4, "category": "E0102"}).json()
    assert e4["responsible"]["department_code"] == "CITY" and e4["linked_part"] is None
    # A manhole 10 m away, maintained by the water company, overrides the area rules.
    m = 10 / 111_320
    with db.begin() as conn:
        conn.execute(text(
            "INSERT INTO city_part (code, class_code, maintenance_dept, owner_dept, geom) VALUES "
            "('1101010101000001', '0101', 'WATER', 'CITY', ST_SetSRID(ST_MakePoint(:x, :y), 4326)),"
            "('1101010101000002', '0101', 'CITY', NULL, ST_SetSRID(ST_MakePoint(:x, :y2), 4326))"),
            {"x": x4, "y": y4 + m, "y2": y4 + 5 * m})
    r4 = client.get("/resolve", params={"lon": x4, "lat": y4, "category": "P0101"}).json()
    assert r4["linked_part"]["code"] == "1101010101000001"
    assert 9 < r4["linked_part"]["distance_m"] < 11
    assert r4["responsible"]["department_code"] == "WATER"
    assert "1101010101000001" in r4["responsible"]["rule"]
    # Other classes link no part; a part beyond 30 m is not linked.
    r4b = client.get("/resolve", params={"lon": x4, "lat": y4 + 60 * m,
                                         "category": "P0102"}).json()
    assert r4b["linked_part"] is None
