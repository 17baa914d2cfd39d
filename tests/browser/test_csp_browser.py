"""The Content-Security-Policy holds in a real browser (issue 18, finding 2): on every page an
injected inline script and an inline event handler do not run, and Chromium reports the
violation, while the pages' own scripts (files from the app) run."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import Engine

from tests.support.browser import chromium_browser
from tests.support.health_planting import WINDOW, plant_city, plant_history
from tests.support.thread_server import live_server

PAGES = ["/map", f"/health/map?window={WINDOW}"]


@pytest.mark.parametrize("path", PAGES)
def test_csp_blocks_inline_script(db: Engine, path: str) -> None:
    plant_city(db)
    plant_history(db)
    with live_server(db) as url, chromium_browser() as chromium:
        page = chromium.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.goto(url + path)
        page.wait_for_load_state("load")
        with contextlib.suppress(Exception):  # Playwright may report the refused tag itself
            page.add_script_tag(content="window.__injected = 'ran'")
        page.evaluate("""() => {
            const img = document.createElement('div');
            img.innerHTML = '<img src="data:," onerror="window.__handler = \\'ran\\'">';
            document.body.append(img);
        }""")
        page.wait_for_timeout(300)
        assert page.evaluate("() => window.__injected") is None
        assert page.evaluate("() => window.__handler") is None
        assert any("script-src" in v for v in violations), violations
        # while the page's own module script runs (it marks the page once its data is drawn)
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=20_000)
