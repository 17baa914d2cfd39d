"""The map's configuration serves the basemaps (GET /map/config)."""

from __future__ import annotations


def test_map_config_serves_basemaps(client) -> None:
    body = client.get("/map/config").json()
    assert body["basemaps"]["default"] == "blank"
    assert "cases" in body["collections"] and "verify" in body["actions"]
    page = client.get("/map")
    assert page.status_code == 200 and "maplibre-gl.css" in page.text
    assert "http" not in page.text.split("<body>")[0].replace('charset="utf-8"', "")
    js = client.get("/map/static/vendor/maplibre-gl/maplibre-gl.mjs")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/map/static/vendor/maplibre-gl/LICENSE.txt").status_code == 200
    assert client.get("/map/static/../../app.py").status_code == 404

