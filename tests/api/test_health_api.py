"""City health over HTTP on the planted history: explained grid health with links and trend,
rankings, choropleth classes equal to mapclassify's, offline HTML map, PNG, clear 422s."""

from __future__ import annotations

import re

import mapclassify
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.support.health_planting import C1, G1, G2, G3, WINDOW, plant_city, plant_history
from tests.support.snapshot import plant_once


@pytest.fixture
def planted(client: TestClient, db: Engine) -> TestClient:
    plant_once(db, "health", lambda: (plant_city(db), plant_history(db)))
    return client


def test_grid_health_explains_every_term_with_links_and_trend(planted: TestClient) -> None:
    r = planted.get(f"/grids/{G1}/health", params={"window": WINDOW})
    assert r.status_code == 200, r.text
    body = r.json()
    terms = {t["indicator"]: t for t in body["terms"]}
    assert terms["closure_rate"]["value"] == pytest.approx(3 / 4)
    assert terms["closure_rate"]["normalised"] == pytest.approx(0.5)  # (0.75 − 0.5) / 0.5
    assert terms["on_time_rate"]["value"] == pytest.approx(2 / 4)
    assert terms["rework_rate"]["value"] == pytest.approx(1 / 4)
    assert terms["case_density"]["value"] == pytest.approx(6 / 0.25)
    assert terms["part_intact_rate"]["value"] == pytest.approx(2 / 4)
    assert terms["handling_p90"]["value"] == pytest.approx(8.4)
    assert sum(t["contribution_total"] for t in body["terms"]) == pytest.approx(body["total"])
    links = terms["closure_rate"]["links"]
    assert "grid=" + G1 in links["closed"] and "state=closed" in links["closed"]
    assert "grid_code=" + G1 in terms["bad_part_density"]["links"]["parts_damaged"]
    assert "category=E0401" in terms["emergency_density"]["links"]["cases_E04"]
    # previous window: one case, closed on time within its own limit
    assert terms["closure_rate"]["previous_value"] == pytest.approx(1.0)
    assert body["previous_window"]["end"] == body["window"]["start"]
    assert body["change"] == pytest.approx(body["total"] - body["previous_total"])


def test_grid_with_no_cases_and_window_with_no_data(planted: TestClient) -> None:
    g3 = planted.get(f"/grids/{G3}/health", params={"window": WINDOW}).json()
    terms = {t["indicator"]: t for t in g3["terms"]}
    assert terms["closure_rate"]["value"] is None and terms["closure_rate"]["contribution"] == 0
    assert terms["case_density"]["value"] == 0
    empty = planted.get(f"/grids/{G1}/health", params={"window": "2025-01-01/2025-02-01"})
    assert empty.status_code == 200
    assert empty.json()["aggregates"]["cases"] == 0
    assert planted.get("/grids/999999999999999/health").status_code == 404


@pytest.mark.parametrize("path, params, field", [
    ("/health/choropleth", {"index": "happiness"}, "index"),
    ("/health/choropleth", {"level": "province"}, "level"),
    ("/health/rankings", {"index": "nope"}, "index"),
    ("/health/choropleth", {"window": "last week"}, "window"),
    ("/health/choropleth", {"scheme": "rainbow"}, "scheme"),
    ("/health/choropleth", {"scheme": "fixed", "breaks": "80,20"}, "breaks"),
])
def test_bad_parameters_are_clear_422(planted: TestClient, path: str, params: dict,
                                      field: str) -> None:
    r = planted.get(path, params=params)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field


@pytest.mark.parametrize("scheme, cls", [("quantiles", mapclassify.Quantiles),
                                         ("natural_breaks", mapclassify.FisherJenks)])
def test_choropleth_classes_match_mapclassify(planted: TestClient, scheme: str, cls) -> None:
    r = planted.get("/health/choropleth", params={"window": WINDOW, "index": "case_density",
                                                  "scheme": scheme, "k": 2})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    body = r.json()
    scores = np.array([f["properties"]["score"] for f in body["features"]], dtype=float)
    assert list(scores) == [24.0, 0.0, 0.0]
    expected = cls(scores, k=2)
    assert [f["properties"]["class"] for f in body["features"]] == list(expected.yb)
    assert body["bins"] == pytest.approx(list(expected.bins))
    assert [x["count"] for x in body["legend"]] == [2, 1, 0]


def test_fixed_breaks_and_community_level(planted: TestClient) -> None:
    r = planted.get("/health/choropleth", params={"window": WINDOW, "level": "community",
                                                  "scheme": "fixed", "breaks": "50,100"})
    body = r.json()
    assert [f["id"] for f in body["features"]] == [C1, "320508001002"]
    totals = np.array([f["properties"]["total"] for f in body["features"]], dtype=float)
    expected = mapclassify.UserDefined(totals, bins=[50, 100])
    assert [f["properties"]["class"] for f in body["features"]] == list(expected.yb)


def test_rankings(planted: TestClient) -> None:
    r = planted.get("/health/rankings", params={"window": WINDOW, "index": "case_density"})
    body = r.json()
    assert body["worst"][0]["code"] == G1  # higher density is worse
    assert {x["code"] for x in body["best"][:2]} == {G2, G3}
    assert body["most_improved"] == [] or body["most_improved"][0]["code"] != G1
    r = planted.get("/health/rankings", params={"window": WINDOW, "level": "street"})
    assert r.json()["count"] == 1


def test_rankings_rows_are_the_orders_first_defined_with_the_previous_window(
        planted: TestClient) -> None:
    """Each list is the first ``limit`` grids with a defined value in its order, and each
    row's previous score is that grid's score in the previous window's own ranking."""
    body = planted.get("/health/rankings", params={"window": WINDOW, "limit": 500}).json()
    before = planted.get("/health/rankings", params={"window": body["previous_window"],
                                                     "limit": 500}).json()
    assert body["count"] == before["count"] >= 3
    previous = {x["code"]: x["score"] for x in before["worst"]}
    worst = body["worst"]
    assert worst and [x["score"] for x in worst] == sorted(x["score"] for x in worst)
    best = [x["score"] for x in body["best"]]
    assert best == sorted(best, reverse=True) and best[0] == worst[-1]["score"]
    for row in worst:
        assert row["score"] is not None and row["name"] == row["code"]
        assert row["previous"] == previous.get(row["code"])
        if row["previous"] is not None:
            assert row["change"] == pytest.approx(row["score"] - row["previous"])
    changes = [x["change"] for x in body["most_improved"]]
    assert None not in changes and changes == sorted(changes, reverse=True)
    one = planted.get("/health/rankings", params={"window": WINDOW, "limit": 1}).json()
    assert [x["code"] for x in one["worst"]] == [worst[0]["code"]]


def test_html_map_is_offline_and_png_renders(planted: TestClient, artifacts) -> None:
    r = planted.get("/health/map", params={"window": WINDOW, "index": "risk"})
    assert r.status_code == 200
    page = r.text
    # a template with its own script files (no inline script): the CSP holds on this page too
    assert "/static/vendor/leaflet/leaflet.js" in page and "/static/health/health_map.js" in page
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert re.findall(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))", page) == []
    assert "风险指数" in page and 'lang="zh-CN"' in page  # Chinese first
    remote = re.findall(r'(?:src|href)="(https?://[^"]+)"', page)
    assert remote == [], remote
    assert 'id="legend"' in page and 'name="window"' in page and 'name="level"' in page
    english = planted.get("/health/map", params={"window": WINDOW, "index": "risk", "lang": "en"})
    assert "Risk (100 = least risk)" in english.text and 'lang="en"' in english.text
    assert planted.get("/static/vendor/leaflet/leaflet.js").status_code == 200
    assert planted.get("/static/vendor/leaflet/../../templates/map.html").status_code == 404
    bad = planted.get("/health/map", params={"index": "happiness"})
    assert bad.status_code == 422 and bad.json()["field"] == "index"
    png = planted.get("/health/choropleth.png", params={"window": WINDOW})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    (artifacts / "health_choropleth.png").write_bytes(png.content)


def test_one_map_grid_panel_summary(planted: TestClient, db: Engine) -> None:
    from api.routes.health import grid_health_summary

    summary = grid_health_summary(db, G1, WINDOW)
    assert summary is not None and [i["name_zh"] for i in summary["indices"]][0] == "城管指数"
    full = planted.get(f"/grids/{G1}/health", params={"window": WINDOW}).json()
    assert summary["total"] == pytest.approx(full["total"])
    assert grid_health_summary(db, "999999999999999", WINDOW) is None
    assert planted.app.state.grid_health is grid_health_summary


def test_area_health_rolls_up_and_links_by_area(planted: TestClient) -> None:
    r = planted.get(f"/health/areas/community/{C1}", params={"window": WINDOW})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["aggregates"]["cases"] == 6 and body["aggregates"]["area_km2"] == 0.5
    terms = {t["indicator"]: t for t in body["terms"]}
    assert "community=" + C1 in terms["closure_rate"]["links"]["closed"]
    assert planted.get("/health/areas/province/1/health").status_code == 404
    bad = planted.get(f"/health/areas/province/{C1}")
    assert bad.status_code == 422 and bad.json()["field"] == "level"


def test_rankings_name_each_place_and_its_weakest_term(planted: TestClient) -> None:
    body = planted.get("/health/rankings", params={"window": WINDOW}).json()
    worst = body["worst"][0]
    assert worst["code"] == G1 and worst["name"] == G1  # planted grids are named by code
    assert body["name"] == "综合得分"
    driver = worst["driver"]
    explained = planted.get(f"/grids/{G1}/health", params={"window": WINDOW}).json()
    lost = {t["indicator"]: t["lost_total"] for t in explained["terms"]}
    assert driver["indicator"] == max(lost, key=lost.get)
    assert driver["points_lost"] == pytest.approx(max(lost.values()), abs=1e-3)
    assert explained["driver"]["indicator"] == driver["indicator"]
    streets = planted.get("/health/rankings", params={"window": WINDOW, "level": "street",
                                                      "index": "risk"},
                          headers={"Accept-Language": "en"}).json()
    assert streets["best"][0]["name"] == "平江街道" and streets["name"].startswith("risk")


def test_names_follow_the_callers_language(planted: TestClient) -> None:
    zh = planted.get(f"/grids/{G1}/health", params={"window": WINDOW}).json()
    en = planted.get(f"/grids/{G1}/health", params={"window": WINDOW},
                     headers={"Accept-Language": "en-GB,en;q=0.8"}).json()
    assert {t["indicator"]: t["name"] for t in zh["terms"]}["overdue_open"] == "超期未结案件"
    assert {t["indicator"]: t["name"] for t in en["terms"]}["overdue_open"] == \
        "overdue open cases"
    assert [i["name"] for i in zh["indices"]][:2] == ["城管指数", "综治指数"]
    geo = planted.get("/health/choropleth", params={"window": WINDOW, "lang": "en"}).json()
    assert geo["name"] == "total score" and geo["legend"][-1]["label"] == "no data"
    png = planted.get("/health/choropleth.png", params={"window": WINDOW, "level": "street"},
                      headers={"Accept-Language": "en"})
    assert png.status_code == 200 and png.headers["content-language"] == "en"


def test_the_printed_english_map_writes_its_title_and_legend_as_labels() -> None:
    """The PNG's title, legend title and legend entries stand alone: capitals in English
    ("No data"), as on the page; the body keeps the catalogue's lower-case words."""
    from api.routes.health import map_figure

    square = {"type": "Polygon", "coordinates": [[[120.0, 31.0], [120.01, 31.0],
                                                  [120.01, 31.01], [120.0, 31.0]]]}
    body = {"level": "grid", "name": "total score",
            "window": {"start": "2026-09-21T00:00:00+08:00", "end": "2026-10-12T00:00:00+08:00"},
            "features": [{"type": "Feature", "id": "G1", "geometry": square,
                          "properties": {"name": "G1", "colour": "#cccccc"}}],
            "legend": [{"class": 0, "label": "30 – 73", "colour": "#d73027", "count": 0},
                       {"class": None, "label": "no data", "colour": "#bbbbbb", "count": 1}]}
    fig = map_figure(None, body, "en", "2026-12-07")
    legend = fig.legends[0]
    assert [x.get_text() for x in legend.get_texts()] == ["30 – 73 (0)", "No data (1)"]
    assert legend.get_title().get_text() == "Total score (points)"
    assert fig._suptitle.get_text().startswith("Total score · unit grids")
    assert body["legend"][-1]["label"] == "no data"  # the body is left as it was
