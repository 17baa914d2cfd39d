"""The front door (门户) at the service's root, in headless Chromium: a browser gets a page in
its language that leads to each role's app (on a phone as on a desk, no sideways scrolling),
and each app opens from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.browser import chromium_browser
from tests.support.language import foreign_words
from tests.support.thread_server import live_server

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
DESK = {"viewport": {"width": 1280, "height": 800}}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_browser_at_the_root_gets_the_portal_and_each_app_opens(
        db: Engine, lang: str, artifacts: Path) -> None:
    with live_server(db) as url, chromium_browser() as browser:
        errors: list[str] = []
        for name, device in (("phone", PHONE), ("desk", DESK)):
            context = browser.new_context(locale=lang, **device)
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            response = page.goto(f"{url}/")
            assert response is not None and response.status == 200
            assert response.headers["content-type"].startswith("text/html")
            assert "script-src" in response.headers["content-security-policy"]
            assert page.locator("html").get_attribute("lang") == lang
            cards = page.locator(".apps li a")
            assert cards.count() == 5
            for i in range(5):
                assert cards.nth(i).is_visible()
            # no sideways scrolling on a phone; every card whole on the screen's width
            width = device["viewport"]["width"]  # type: ignore[index]
            assert page.evaluate("document.scrollingElement.scrollWidth") <= width
            assert foreign_words(page, lang) == []
            page.screenshot(path=str(artifacts / f"portal_{name}_{lang}.png"), full_page=True)
            assert errors == []
            context.close()
        page = browser.new_page(locale=lang)
        page.goto(f"{url}/")
        hrefs = page.locator(".apps li a").evaluate_all("els => els.map(a => a.href)")
        assert [h.removeprefix(url) for h in hrefs] == ["/map", "/desk", "/m/", "/health/map",
                                                    "/evaluation/board"]
        for href in hrefs + page.locator(".developers a").evaluate_all(
                "els => els.map(a => a.href)"):
            opened = page.goto(href)
            assert opened is not None and opened.status == 200, href
        page.goto(f"{url}/")
        page.locator("#app-map a").click()
        page.wait_for_url(f"{url}/map")
        assert page.locator("html").get_attribute("lang") == lang
