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
        assert page.locator("#title").inner_text().startswith("Safety")  # a heading: capital
        assert page.locator(".leaflet-interactive").count() >= 3
        codes = page.evaluate("() => window.gridcoreHealth.data.features.map(f => f.id)")
        assert G1 in codes
    assert errors == []
    assert csp == []
    assert external == []


def test_clicking_a_grid_opens_its_explanation(db: Engine, artifacts: Path) -> None:
    """A click (or Enter) on a grid opens the side panel with its explained health for the
    page's window, in the page's language; Escape closes it."""
    plant_city(db)
    plant_history(db)
    with live_server(db) as url, chromium_browser() as chromium:
        page = chromium.new_page(viewport={"width": 1100, "height": 760}, locale="zh-CN")
        errors, csp = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: csp.append(m.text)
                if "Content Security Policy" in m.text else None)
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/health?" in r.url else None)
        page.goto(f"{url}/health/map?window={WINDOW}&index=total")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        assert page.locator("#explain").is_hidden()
        shape = page.locator(f".leaflet-interactive[aria-label*='{G1}']")
        shape.click()
        page.wait_for_function("() => document.getElementById('explain').dataset.ready === '1'")
        panel = page.locator("#explain")
        text = panel.inner_text()
        assert G1 in page.locator("#explain-heading").inner_text()
        for name in ("综合得分", "城管指数", "综治指数", "风险指数", "平安指数", "主要失分项",
                     "上期值", "受理案件", "相关记录"):
            assert name in text, name
        assert "较上一时间窗" in text or "上一时间窗无数据" in text
        assert asked and f"/grids/{G1}/health?" in asked[-1]
        assert "window=" + WINDOW.replace("/", "%2F") in asked[-1]
        assert panel.locator("a[href*='/cases?']").count() >= 1
        assert page.evaluate("() => document.activeElement.id") == "explain-close"
        page.screenshot(path=str(artifacts / "health_map_explain.png"))
        page.keyboard.press("Escape")
        assert panel.is_hidden()
        # keyboard: focus a grid, Enter opens it; the close button closes it
        shape.focus()
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.getElementById('explain').dataset.ready === '1'")
        assert G1 in page.locator("#explain-heading").inner_text()
        page.locator("#explain-close").click()
        assert panel.is_hidden()
        # in English
        page.goto(f"{url}/health/map?window={WINDOW}&index=total&lang=en")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        page.locator(f".leaflet-interactive[aria-label*='{G1}']").click()
        page.wait_for_function("() => document.getElementById('explain').dataset.ready === '1'")
        text = panel.inner_text()
        assert G1 in text
        lower = text.lower()  # the panel's labels begin with a capital in English
        assert "weakest term" in lower or "no points lost" in lower
        assert "city management" in lower and "safety" in lower
        assert "cases received" in lower and "城管指数" not in text
        page.screenshot(path=str(artifacts / "health_map_explain_en.png"))
    assert errors == []
    assert csp == []
