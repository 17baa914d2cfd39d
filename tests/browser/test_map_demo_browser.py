"""The one map on the demo city (central Helsinki: real OSM city parts, drawn grids, generated
case history) in headless Chromium: tiles load, a grid click shows its details, a department
handler handles an open case from the map, the clock colours render. Screenshots are saved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.support.browser import chromium_browser, settle
from tests.support.demo_db import demo_database, run_id
from tests.support.thread_server import live_server

CLOCK_HEX = {"green": "#2e9d4f", "yellow": "#f2b705", "red": "#d7301f"}


@pytest.fixture(scope="module")
def demo_map(admin_url: str, request: pytest.FixtureRequest) -> Iterator[tuple]:
    # the demo city, built once per run (tests/support/demo_db): a copy of this module's own
    with demo_database(admin_url, run_id(request.config)) as (engine, _), \
            live_server(engine) as url, chromium_browser() as chromium:
        page = chromium.new_context(viewport={"width": 1280, "height": 800}).new_page()
        yield page, url, engine


def test_demo_city_on_the_map(demo_map, artifacts: Path) -> None:
    page, url, engine = demo_map
    with engine.connect() as conn:
        case_id, lon, lat, grid = conn.execute(text(
            "SELECT id, ST_X(geom), ST_Y(geom), grid_code FROM case_record "
            "WHERE state = 'accepted' AND grid_code IS NOT NULL ORDER BY id LIMIT 1")).one()
        clocks = dict(conn.execute(text(
            "SELECT id, CASE WHEN now() > deadline_at THEN 'red' WHEN now() > warn_at "
            "THEN 'yellow' ELSE 'green' END FROM case_record WHERE state = 'accepted'")).all())
    tiles: list[tuple[str, int]] = []
    page.on("response", lambda r: tiles.append((r.url, r.status)) if "/tiles/" in r.url
            else None)
    page.goto(f"{url}/map#c={lon},{lat}&z=17")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=60_000)
    page.wait_for_function("() => window.gridcore.map.areTilesLoaded()", timeout=60_000)
    settle(page)
    assert {u.split("/collections/")[1].split("/")[0] for u, s in tiles if s == 200} \
        >= {"grids", "parts", "cases", "areas"}
    # The clock colour of the open case is drawn where the case is.
    from tests.support.browser import near, pixel

    shot = page.screenshot(path=str(artifacts / "demo_map_case.png"))
    rgb = pixel(page, shot, lon, lat)
    want = clocks[case_id]
    assert near(rgb, CLOCK_HEX[want]), (rgb, want)
    # Click the grid around the case (off the case symbol) → its details.
    page.evaluate(f"window.gridcore.showGrid('{grid}')")
    page.wait_for_selector("#grid-title")
    assert grid in page.inner_text("#grid-title")
    assert page.locator(".hierarchy").inner_text().count("›") == 2  # district › street › community
    assert int(page.inner_text("#open-count")) >= 1
    page.screenshot(path=str(artifacts / "demo_map_grid.png"))
    # A department handler handles the accepted case from the map.
    page.select_option("#role", "department_handler")
    page.evaluate(f"window.gridcore.showCase({case_id})")
    page.click("button[data-action='handle']")
    page.wait_for_function(
        "() => document.getElementById('case-state')?.dataset.state === 'handled'")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM case_record WHERE id = :i"),
                            {"i": case_id}).scalar() == "handled"
    page.screenshot(path=str(artifacts / "demo_map_handled.png"))
