"""The desk's pages in production mode (no development stand-in): nobody is let in before signing
in, the map starts once someone has, and MapLibre's tile requests carry the signed-in user's
token (every layer needs one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.support.browser import chromium_browser
from tests.support.cases import INSIDE_001
from tests.support.desk_browser import WIDE, wait_state
from tests.support.desk_city import PASSWORD, dispatched, plant_desk, report
from tests.support.live_server import live_server


@pytest.fixture(scope="module")
def production(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    media = tmp_path_factory.mktemp("media")
    with live_server({"GRIDCORE_DATABASE_URL": database_url, "GRIDCORE_MEDIA_DIR": str(media),
                      "GRIDCORE_ENV": "production"}, workers=1) as url:
        yield url


@pytest.fixture(scope="module")
def chromium(production: str) -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def _page(chromium: Any, url: str) -> tuple[Any, list[tuple[str, int, bool]]]:
    page = chromium.new_context(viewport=WIDE, locale="zh-CN").new_page()
    tiles: list[tuple[str, int, bool]] = []
    page.on("response", lambda r: tiles.append(
        (r.url, r.status, "authorization" in r.request.headers))
        if "/tiles/" in r.url else None)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url)
    return page, tiles


def _sign_in(page: Any, user: str) -> None:
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#signin button[type=submit]")


def test_the_map_waits_for_a_signed_in_user(chromium, production: str, db: Engine,  # type: ignore[no-untyped-def]
                                            artifacts: Path) -> None:
    plant_desk(db)
    case = report(production, "w-li", INSIDE_001, description="井盖松动")
    page, tiles = _page(chromium, f"{production}/map?lang=zh-CN"
                                  f"#c={INSIDE_001[0]},{INSIDE_001[1]}&z=16")
    page.wait_for_selector("#status:not([hidden])")
    assert "请先登录" in page.inner_text("#status")
    assert page.evaluate("() => !window.gridcore")  # no map without a user
    page.screenshot(path=str(artifacts / "map_production_signed_out.png"))
    _sign_in(page, "disp-wang")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=60_000)
    page.wait_for_selector(f"#queue-list [data-case='{case['id']}']", timeout=30_000)
    assert page.is_hidden("#status")
    assert tiles and all(status == 200 and token for _, status, token in tiles), tiles[:5]
    page.screenshot(path=str(artifacts / "map_production_signed_in.png"))
    assert not page.errors, page.errors


def test_the_workbench_signs_in_and_works(chromium, production: str, db: Engine,  # type: ignore[no-untyped-def]
                                          artifacts: Path) -> None:
    plant_desk(db)
    case = dispatched(production, description="垃圾满溢")
    page, tiles = _page(chromium, f"{production}/desk?lang=zh-CN")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=60_000)
    _sign_in(page, "h-liu")
    page.click(f"#task-list [data-case='{case['id']}']")
    wait_state(page, "dispatched")
    page.click(".actions button[data-action=accept]")
    wait_state(page, "accepted")
    page.wait_for_timeout(500)  # the small map's tiles
    assert all(status == 200 and token for _, status, token in tiles), tiles[:5]
    page.screenshot(path=str(artifacts / "desk_production_1280.png"))
    assert not page.errors, page.errors
