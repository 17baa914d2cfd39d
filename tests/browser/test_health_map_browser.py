"""The health choropleth page in headless Chromium: a template and its own script under the
Content-Security-Policy; it draws the GeoJSON with the vendored Leaflet, speaks Chinese first,
and asks nothing of the network (no CDN, no tiles)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from tests.support.browser import chromium_browser
from tests.support.health_planting import G1, WINDOW, plant_city, plant_history
from tests.support.thread_server import live_server


def test_health_map_renders_offline(db: Engine, artifacts: Path) -> None:
    plant_city(db)
    plant_history(db)
    with live_server(db) as url, chromium_browser() as chromium:
        page = chromium.new_page(viewport={"width": 1000, "height": 700}, locale="zh-CN")
        external, errors, csp = [], [], []
        page.on("request", lambda r: external.append(r.url)
                if not r.url.startswith(url) and not r.url.startswith("data:") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: csp.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.goto(f"{url}/health/map?window={WINDOW}&index=total&scheme=natural_breaks&k=3")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        assert page.evaluate("() => typeof L.version") == "string"
        assert page.evaluate("() => window.gridcoreHealth.data.features.length") >= 3
        assert page.locator(".leaflet-interactive").count() >= 3  # the grids are drawn
        assert page.locator("#legend").inner_text().count("(") == 4  # 3 classes + no data
        assert "无数据" in page.locator("#legend").inner_text()
        assert page.locator("select[name=window]").count() == 1
        assert "综合得分" in page.locator("#title").inner_text()
        page.locator(".leaflet-interactive").first.hover()
        page.wait_for_function("() => document.querySelector('.health-tooltip') !== null")
        page.screenshot(path=str(artifacts / "health_map.png"))
        # a choice reloads the page with the new index, in the chosen language
        page.select_option("select[name=index]", "risk")
        page.wait_for_url("**index=risk**")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        assert "风险指数" in page.locator("#title").inner_text()
        page.goto(f"{url}/health/map?window={WINDOW}&index=safety&lang=en")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        assert page.locator("#title").inner_text().startswith("safety")
        assert page.locator(".leaflet-interactive").count() >= 3
        codes = page.evaluate("() => window.gridcoreHealth.data.features.map(f => f.id)")
        assert G1 in codes
    assert errors == []
    assert csp == []
    assert external == []
