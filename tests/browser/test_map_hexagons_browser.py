"""The dispatchers' map zoomed out and in, in headless Chromium (desktop and phone sizes, Chinese
and English): below zoom 14 city parts are hexagons coloured by density with the legend and a
popup of their counts per state; below 15 cases are hexagons with counts; zoomed in both are
points. Screenshots go to the artifacts dir."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import Engine

from layers.exchange.imports import load_parts
from tests.support.browser import chromium_browser, settle
from tests.support.map_planted import plant
from tests.support.thread_server import live_server

CENTRE = "24.9430,60.1690"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
LEGEND = {"zh-CN": "城市部件按六边形汇总", "en": "city parts per hexagon"}
POPUP = {"zh-CN": "此六边形内城市部件", "en": "city parts in this hexagon"}


@pytest.fixture(scope="module")
def browser(engine: Engine) -> Iterator[tuple]:
    with live_server(engine) as url, chromium_browser() as chromium:
        yield chromium, url


def scatter_parts(engine: Engine, n: int = 1500) -> None:
    rng = random.Random(11)
    frame = gpd.GeoDataFrame(
        {"class_code": [rng.choice(["0101", "0120", "0204"]) for _ in range(n)],
         "state": [rng.choice(["intact", "intact", "damaged", "missing"]) for _ in range(n)]},
        geometry=shapely.points([24.9430 + rng.gauss(0, 0.01) for _ in range(n)],
                                [60.1690 + rng.gauss(0, 0.005) for _ in range(n)]), crs=4326)
    load_parts(engine, frame, district="110101")


def open_map(page, url: str, zoom: float, lang: str) -> None:  # noqa: ANN001
    page.goto(f"{url}/map?lang={lang}#c={CENTRE}&z={zoom}")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=30_000)
    page.wait_for_function("() => window.gridcore.map.areTilesLoaded()", timeout=30_000)
    settle(page)


@pytest.mark.parametrize(("size", "lang"), [("desktop", "zh-CN"), ("desktop", "en"),
                                            ("phone", "zh-CN"), ("phone", "en")])
def test_zoomed_out_parts_and_cases_are_hexagons_zoomed_in_points(
        browser, db: Engine, artifacts: Path, size: str, lang: str) -> None:
    chromium, url = browser
    plant(db)
    scatter_parts(db)
    context = chromium.new_context(viewport=SIZES[size], locale=lang,
                                   is_mobile=size == "phone", has_touch=size == "phone")
    page = context.new_page()
    errors: list[str] = []
    tiles: list[tuple[str, int]] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: tiles.append((r.url, r.status)) if "/tiles/" in r.url
            else None)
    try:
        open_map(page, url, 12, lang)
        if size == "phone":  # a phone shows the queue first, the map one tab away
            page.tap("#view-map")
            settle(page)
        assert not errors, errors
        assert any("/parts/tiles/WebMercatorQuad/12/" in u and s == 200 for u, s in tiles)
        hexes = page.evaluate(
            "() => window.gridcore.map.queryRenderedFeatures({layers: ['parts-hex']})"
            ".map(f => f.properties)")
        assert hexes and all(h["aggregated"] and h["count"] > 0 for h in hexes)
        assert sum(h["count"] for h in {h["h3"]: h for h in hexes}.values()) > 1000
        assert not page.evaluate(
            "() => window.gridcore.map.queryRenderedFeatures({layers: ['parts']}).length")
        # the case hexagons keep their counts as labels
        assert page.locator(".hex-label").count() >= 1
        page.click("#layers summary")
        assert LEGEND[lang] in page.inner_text("#layers")
        page.screenshot(path=str(artifacts / f"map_hexagons_z12_{size}_{lang}.png"))
        # a part hexagon where no case hexagon lies: its popup gives the counts per state
        target = page.evaluate("""() => {
            const m = window.gridcore.map;
            for (const f of m.queryRenderedFeatures({layers: ['parts-hex']})) {
              const ring = f.geometry.coordinates[0];
              const c = ring.slice(0, -1).reduce((a, p) => [a[0] + p[0], a[1] + p[1]], [0, 0])
                .map(v => v / (ring.length - 1));
              const p = m.project(c), box = m.getContainer().getBoundingClientRect();
              if (p.x < 40 || p.y < 40 || p.x > box.width - 40 || p.y > box.height - 40) continue;
              const top = m.queryRenderedFeatures(p)[0];
              if (top && top.layer.id === 'parts-hex')
                return {x: p.x, y: p.y, count: top.properties.count};
            }
            return null; }""")
        assert target, "no part hexagon free of cases to click"
        page.click("#layers summary")  # fold the panel away again
        page.locator("#map canvas").click(position={"x": target["x"], "y": target["y"]})
        popup = page.wait_for_selector(".hex-popup")
        text = popup.inner_text()
        assert POPUP[lang] in text and str(target["count"]) in text
        page.screenshot(path=str(artifacts / f"map_hexagons_popup_{size}_{lang}.png"))
        # zoomed in: points, no hexagons
        page.evaluate("() => window.gridcore.map.jumpTo({center: [24.9430, 60.1690], zoom: 16})")
        page.wait_for_function("() => window.gridcore.map.areTilesLoaded()", timeout=30_000)
        settle(page)
        assert page.evaluate(
            "() => window.gridcore.map.queryRenderedFeatures({layers: ['parts']}).length")
        assert not page.evaluate(
            "() => window.gridcore.map.queryRenderedFeatures({layers: ['parts-hex', "
            "'cases-hex']}).length")
        assert not errors, errors
        page.screenshot(path=str(artifacts / f"map_points_z16_{size}_{lang}.png"))
    finally:
        context.close()
