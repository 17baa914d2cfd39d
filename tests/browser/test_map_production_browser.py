"""The one map in production mode (issue 18, finding 8): nothing but the page's shell answers
before sign-in; signing in on the page starts the map, and every tile it draws — cases
included — goes with the token (MapLibre's requests carry it)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from gridcore.settings import Settings
from layers.security.users import add_user
from tests.support.browser import chromium_browser
from tests.support.map_planted import plant
from tests.support.thread_server import live_server

CENTRE = "24.9430,60.1690"


def test_map_signs_in_then_draws_with_the_token(db: Engine, artifacts: Path) -> None:
    plant(db)
    add_user(db, "disp-prod", "correct horse battery staple 42", "dispatcher")
    tree = Settings()
    tree.security = tree.security.model_copy(update={"env": "production"})
    with live_server(db, tree) as url, chromium_browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        answers: list[tuple[str, int]] = []
        page.on("response", lambda r: answers.append((r.url, r.status)))
        page.goto(f"{url}/map#c={CENTRE}&z=16")
        page.wait_for_selector("#status:not([hidden])")
        assert "sign in" in page.locator("#status").inner_text().lower()
        assert page.evaluate("() => window.gridcore") is None  # no map without a caller
        page.fill("#username", "disp-prod")
        page.fill("#password", "correct horse battery staple 42")
        page.click("#signin button")
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=30_000)
        page.wait_for_function("() => window.gridcore.map.areTilesLoaded()", timeout=30_000)
        page.screenshot(path=str(artifacts / "map_production.png"))
    tiles = [(u, s) for u, s in answers if "/tiles/" in u]
    assert any("/collections/cases/tiles/" in u and s == 200 for u, s in tiles), tiles
    assert not any(s in (401, 403) for u, s in tiles), tiles
