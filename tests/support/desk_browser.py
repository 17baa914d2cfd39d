"""The desk's pages in a browser: a live server with two worker processes (as ``gridcore serve
--workers 2``: a socket per worker) on the test database, one Chromium, the planted desk city
(``tests.support.desk_city``), and pages opened signed in. Test modules import the fixtures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import Engine

from tests.support.browser import chromium_browser
from tests.support.cases import INSIDE_001
from tests.support.desk_city import plant_desk, token
from tests.support.live_server import live_server

WIDE, TABLET = {"width": 1280, "height": 800}, {"width": 1024, "height": 768}


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    media = tmp_path_factory.mktemp("media")
    with live_server({"GRIDCORE_DATABASE_URL": database_url, "GRIDCORE_MEDIA_DIR": str(media)},
                     workers=2, supervisor=True) as url:
        yield url


@pytest.fixture(scope="module")
def chromium(server: str) -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


@pytest.fixture
def city(db: Engine, server: str) -> Iterator[str]:
    plant_desk(db)
    yield server


def signed_in(chromium: Any, base: str, user: str | None, path: str, viewport: Any = WIDE,
              lang: str = "zh-CN") -> Any:
    """A page of its own browser context, signed in as ``user`` (the token the sign-in form
    stores), once its script is ready and its event stream open."""
    context = chromium.new_context(viewport=viewport, locale=lang)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    if user:
        page.add_init_script(f"sessionStorage.setItem('gridcore-token', '{token(base, user)}')")
    sep = "&" if "?" in path.split("#")[0] else "?"
    path, _, fragment = path.partition("#")
    pending: dict[Any, float] = {}
    page.on("request", lambda r: pending.__setitem__(r, time.monotonic()))
    page.on("requestfinished", lambda r: pending.pop(r, None))
    page.on("requestfailed", lambda r: pending.pop(r, None))
    page.open_requests = pending
    page.goto(f"{base}{path}{sep}lang={lang}{'#' + fragment if fragment else ''}")
    try:
        page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=60_000)
    except PlaywrightTimeout as timeout:
        # say what the page was still waiting for (a slow tile, a hung route), not only that
        # it was not ready
        raise AssertionError(f"{path} not ready in 60 s; {still_open(page)}") from timeout
    page.wait_for_function("() => window.gridcore.live.events && "
                           "window.gridcore.live.events.worker", timeout=30_000)
    return page


def open_map(chromium: Any, base: str, user: str | None, viewport: Any = WIDE,
             lang: str = "zh-CN") -> Any:
    page = signed_in(chromium, base, user, f"/map#c={INSIDE_001[0]},{INSIDE_001[1]}&z=16",
                     viewport, lang)
    page.wait_for_function("() => document.body.dataset.queue", timeout=30_000)
    return page


def open_desk(chromium: Any, base: str, user: str, viewport: Any = WIDE,
              lang: str = "zh-CN") -> Any:
    page = signed_in(chromium, base, user, "/desk", viewport, lang)
    page.wait_for_function("() => document.body.dataset.tasks", timeout=30_000)
    return page


def still_open(page: Any) -> str:
    """The requests a page opened by ``signed_in`` still waits for (longest first), and its
    errors: what a timeout reports."""
    now = time.monotonic()
    pending = getattr(page, "open_requests", {})
    waiting = sorted((f"{now - t:.0f} s {r.method} {r.url}" for r, t in pending.items()),
                     reverse=True)
    return f"requests still open: {waiting[:12]}; page errors: {getattr(page, 'errors', [])}"


def wait_state(page: Any, state: str) -> None:
    try:
        page.wait_for_function(f"() => document.getElementById('case-state')?.dataset.state "
                               f"=== '{state}'", timeout=15_000)
    except PlaywrightTimeout as timeout:
        shown = page.evaluate("() => [document.querySelector('article.case')?.dataset.caseId, "
                              "document.getElementById('case-state')?.dataset.state]")
        raise AssertionError(f"the case panel did not reach {state!r} in 15 s: it shows case "
                             f"{shown[0]} in state {shown[1]!r}; {still_open(page)}") from timeout
