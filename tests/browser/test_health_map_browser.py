"""The health choropleth page in headless Chromium: it draws with the vendored Leaflet and asks
nothing of the network (no CDN, no tiles)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from tests.support.browser import chromium_browser
from tests.support.health_planting import WINDOW, plant_city, plant_history
from tests.support.thread_server import live_server


def test_health_map_renders_offline(db: Engine, artifacts: Path) -> None:
    plant_city(db)
    plant_history(db)
    with live_server(db) as url, chromium_browser() as chromium:
        page = chromium.new_page(viewport={"width": 1000, "height": 700})
        external, errors = [], []
        page.on("request", lambda r: external.append(r.url)
                if not r.url.startswith(url) and not r.url.startswith("data:") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/health/map?window={WINDOW}&index=total&scheme=natural_breaks&k=3")
        page.wait_for_function("() => window.L && document.querySelector('.leaflet-pane')")
        assert page.evaluate("() => typeof L.version") == "string"
        assert page.locator("#legend").inner_text().count("(") == 4  # 3 classes + no data
        assert page.locator("select[name=window]").count() == 1
        page.screenshot(path=str(artifacts / "health_map.png"))
    assert errors == []
    assert external == []
