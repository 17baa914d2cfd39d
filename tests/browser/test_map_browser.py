"""The dispatchers' map in a real browser: headless Chromium (Debian ``chromium``) driven by
Playwright against a live server with planted data. Screenshots go to the artifacts dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.support.browser import chromium_browser, near, pixel, settle
from tests.support.map_planted import CASES, plant
from tests.support.thread_server import live_server

CENTRE = "24.9430,60.1690"  # the middle of the planted grid block


@pytest.fixture(scope="module")
def browser(engine: Engine) -> Iterator[tuple]:
    """One server and one Chromium for the module (Playwright gives the browser a fresh
    temporary profile); each test gets its own browser context and freshly planted data."""
    with live_server(engine) as url, chromium_browser() as chromium:
        yield chromium, url


@pytest.fixture
def browser_page(browser, db: Engine) -> Iterator[tuple]:
    chromium, url = browser
    plant(db)
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    external: list[str] = []
    tiles: list[tuple[str, int]] = []
    errors: list[str] = []
    page.on("request", lambda r: external.append(r.url)
            if not r.url.startswith(url) and not r.url.startswith(("data:", "blob:"))
            else None)
    page.on("response", lambda r: tiles.append((r.url, r.status)) if "/tiles/" in r.url
            else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page, url, {"external": external, "tiles": tiles, "errors": errors}
    finally:
        context.close()


def open_map(page, url: str, zoom: int = 16) -> None:
    page.goto(f"{url}/map#c={CENTRE}&z={zoom}")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=30_000)
    page.wait_for_function("() => window.gridcore.map.areTilesLoaded()", timeout=30_000)
    settle(page)


def test_map_loads_tiles_and_renders_clock_colours(browser_page, artifacts: Path) -> None:
    page, url, seen = browser_page
    open_map(page, url)
    loaded = {u.split("/collections/")[1].split("/")[0] for u, s in seen["tiles"] if s == 200}
    assert {"grids", "parts", "cases", "areas"} <= loaded
    assert not seen["external"], f"the page fetched outside the server: {seen['external']}"
    assert not seen["errors"], seen["errors"]
    shot = page.screenshot(path=str(artifacts / "map_clock_colours.png"))
    colours = {"green": "#2e9d4f", "yellow": "#f2b705", "red": "#d7301f"}
    for (_cid, _cat, state, lon, lat, _clock), colour in zip(CASES, ["green", "yellow", "red"],
                                                            strict=False):
        assert state == "dispatched"
        assert near(pixel(page, shot, lon, lat), colours[colour]), (colour, lon, lat)
    # Grid codes are HTML labels (no glyphs needed), one per grid; the attribution is shown.
    page.wait_for_selector(".grid-label >> text=110101001001006")
    assert page.locator(".grid-label", has_text="110101001001001").count() == 1
    assert "gridcore" in page.locator(".maplibregl-ctrl-attrib").inner_text()


def test_grid_click_shows_hierarchy_workers_and_open_cases(browser_page, artifacts) -> None:
    page, url, _ = browser_page
    open_map(page, url)
    # The middle of grid 005 (second row, middle column) has no case point on it.
    x, y = page.evaluate("() => { const p = window.gridcore.map.project([24.9430, 60.16945]);"
                         " return [p.x, p.y]; }")
    page.locator("#map canvas").click(position={"x": x, "y": y})
    page.wait_for_selector("#grid-title")
    assert "110101001001005" in page.inner_text("#grid-title")
    details = page.inner_text("#details")
    assert "Kluuvi-1" in details and "Keskusta" in details  # community … district
    assert "Eero" in details  # its worker
    assert page.inner_text("#open-count") == "0"
    page.wait_for_selector("#grid-health")  # the health work's explained score, via its API
    page.screenshot(path=str(artifacts / "map_grid_details.png"))


def test_case_action_from_the_map_changes_the_case(browser_page, db, artifacts) -> None:
    page, url, seen = browser_page
    open_map(page, url)
    with db.begin() as conn:  # a fresh case, reported: a dispatcher may verify it
        conn.execute(text("UPDATE case_record SET state = 'reported', stage = 'dispatch' "
                          "WHERE id = 1"))
    page.evaluate("window.gridcore.showCase(1)")
    page.wait_for_selector("button[data-action='verify']")
    page.click("button[data-action='verify']")
    page.wait_for_function(
        "() => document.getElementById('case-state')?.dataset.state === 'verified'")
    with db.connect() as conn:
        assert conn.execute(text("SELECT state FROM case_record WHERE id = 1")).scalar() \
            == "verified"
        assert conn.execute(text("SELECT count(*) FROM case_history WHERE case_id = 1 AND "
                                 "action = 'verify'")).scalar() == 1
    page.screenshot(path=str(artifacts / "map_case_action.png"))


def test_new_case_appears_without_reload(browser_page, db, artifacts) -> None:
    page, url, _ = browser_page
    open_map(page, url)
    find = ("() => window.gridcore.map.queryRenderedFeatures({layers: ['cases-point']})"
            ".some(f => f.properties.id === 9)")
    assert not page.evaluate(find)
    from tests.support.map_planted import plant_cases

    plant_cases(db, [(9, "E0103", "dispatched", 24.9431, 60.1695, (-3, -1))])
    page.wait_for_function(find, timeout=20_000)  # the version poll refreshed the source
    page.screenshot(path=str(artifacts / "map_new_case.png"))


def test_search_filters_part_toggle_and_gcj02_basemap(browser_page, artifacts) -> None:
    page, url, seen = browser_page
    open_map(page, url)
    page.fill("#search", "110101001001003")
    page.click("#search-form button")
    page.wait_for_selector("#grid-title")
    assert "110101001001003" in page.inner_text("#grid-title")
    page.fill("#search", "C00000003")
    page.click("#search-form button")
    page.wait_for_function("() => document.getElementById('case-title')?.textContent"
                           ".includes('C00000003')")
    assert page.get_attribute("#case-clock", "data-colour") in ("red", "yellow", "green")
    # The queue's filters go to the server with the tile requests (whitelisted properties).
    # (the filtered tile's answer is waited for: the tiles may all be loaded still, the old
    # ones, when the page has swapped the source but not yet asked for the new ones)
    with page.expect_response(lambda r: "/tiles/" in r.url and "clock=red" in r.url,
                              timeout=30_000) as filtered:
        page.select_option("#f-colour", "red")
    assert filtered.value.status == 200
    # While the page swaps a source its ``tiles`` is briefly undefined: the predicate must keep
    # waiting then, not throw (a throw ends wait_for_function at once).
    page.wait_for_function("() => window.gridcore.map.getSource('cases')?.tiles?.[0]"
                           "?.includes('clock=red')")
    # Toggling a part class hides it without a request.
    page.click("#layers summary")
    page.uncheck("input[data-class='0101']")
    hidden = page.evaluate("() => JSON.stringify(window.gridcore.map.getFilter('parts'))")
    assert "0101" not in hidden and "0120" in hidden
    # An AMap (GCJ-02) basemap: the overlay tiles are asked for in GCJ-02.
    page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(url)
               else route.continue_())
    page.select_option("#basemap", "amap")
    page.wait_for_function("() => window.gridcore.map.getSource('grids')?.tiles?.[0]"
                           "?.includes('datum=gcj02')")
    # the attribution control follows the new style's sources a moment later
    page.wait_for_function("() => /高德|AutoNavi/.test(document.querySelector("
                           "'.maplibregl-ctrl-attrib')?.textContent || '')", timeout=10_000)
    # The page's own WGS 84 → GCJ-02 (for fly-to and fit) agrees with the published pair.
    lon, lat = page.evaluate("window.gridcore.gcj(121.5272106, 31.1774276)")
    assert abs(lon - 121.531541859215) < 1e-9 and abs(lat - 31.17530398364597) < 1e-9
    assert page.evaluate("window.gridcore.gcj(24.94, 60.17)") == [24.94, 60.17]  # not China
    page.screenshot(path=str(artifacts / "map_search_filters.png"))


def test_signed_in_user_acts_with_the_role_of_the_token(browser_page, db) -> None:
    from layers.security.users import add_user

    page, url, _ = browser_page
    add_user(db, "disp-aino", "correct horse battery staple 42", "dispatcher")
    open_map(page, url)
    page.fill("#username", "disp-aino")
    page.fill("#password", "correct horse battery staple 42")
    page.click("#signin button")
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.is_hidden("#stand-in")  # the token's role acts, not the stand-in's
    assert "disp-aino" in page.inner_text("#me")
    with db.begin() as conn:
        conn.execute(text("UPDATE case_record SET state = 'reported', stage = 'dispatch' "
                          "WHERE id = 2"))
    page.evaluate("window.gridcore.showCase(2)")
    page.click("button[data-action='verify']")
    page.wait_for_function(
        "() => document.getElementById('case-state')?.dataset.state === 'verified'")
    with db.connect() as conn:
        actor, role = conn.execute(text(
            "SELECT actor, role FROM case_history WHERE case_id = 2 AND action = 'verify'")).one()
    assert (actor, role) == ("disp-aino", "dispatcher")
