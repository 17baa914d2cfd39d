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
PHONE = {"width": 390, "height": 844}  # opened with mobile emulation (touch, a phone's viewport)


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
    phone = viewport["width"] <= PHONE["width"]
    context = chromium.new_context(viewport=viewport, locale=lang, is_mobile=phone,
                                   has_touch=phone, device_scale_factor=1 if phone else None)
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


def wait_state(page: Any, state: str, settled: bool = True) -> None:
    """The case panel shows ``state``, and (``settled``) the page's requests are over.

    The live event usually draws the new state before the step's own catching-up (queue, tiles,
    the case again) has ended; that redraw can move the buttons, and a click aimed from the
    first layout then lands on another button or none (CI once lost a 立案 click this way)."""
    try:
        page.wait_for_function(f"() => document.getElementById('case-state')?.dataset.state "
                               f"=== '{state}'", timeout=15_000)
    except PlaywrightTimeout as timeout:
        shown = page.evaluate("() => [document.querySelector('article.case')?.dataset.caseId, "
                              "document.getElementById('case-state')?.dataset.state]")
        raise AssertionError(f"the case panel did not reach {state!r} in 15 s: it shows case "
                             f"{shown[0]} in state {shown[1]!r}; {still_open(page)}") from timeout
    if settled:
        requests_quiet(page)


def requests_quiet(page: Any, quiet_s: float = 0.25, limit_s: float = 15.0) -> None:
    """Wait until the page's own API calls (fetch and XHR, its event stream aside) have been
    over for ``quiet_s``. Scripts, tiles' images and workers do not count: a module worker's
    script stayed "open" in CI long after it ran. A page still busy after ``limit_s`` is left to
    the test's own waits (this only keeps clicks off a redraw)."""
    pending = getattr(page, "open_requests", None)
    if pending is None:
        return
    start = quiet_since = time.monotonic()
    while time.monotonic() - start < limit_s:
        now = time.monotonic()
        if any(r.resource_type in ("fetch", "xhr") and "/events" not in r.url
               for r in list(pending)):
            quiet_since = now
        elif now - quiet_since >= quiet_s:
            return
        page.wait_for_timeout(50)


# Every toast a page shows, kept: a toast goes after 8 s (and a fifth pushes out the first), so a
# test that looks for it after something slow of its own (a command-line process that exits some
# seconds after its commit) can miss one the page did show.
_WATCH_TOASTS = """() => {
    window.toastsShown = [];
    new MutationObserver((changes) => {
        for (const change of changes) for (const node of change.addedNodes)
            if (node.classList?.contains('toast'))
                window.toastsShown.push({kinds: [...node.classList], text: node.textContent,
                                         at: Date.now()});
    }).observe(document.getElementById('toasts'), {childList: true});
}"""


def watch_toasts(page: Any) -> None:
    """Keep every toast ``page`` shows from now on in ``window.toastsShown``."""
    page.evaluate(_WATCH_TOASTS)


def toasts_shown(page: Any, kind: str, text: str) -> int:
    """How many toasts of ``kind`` (a class: yellow, red, assigned…) mentioning ``text`` the
    page has shown since ``watch_toasts``."""
    return int(page.evaluate("([kind, text]) => window.toastsShown.filter(t => "
                             "t.kinds.includes(kind) && t.text.includes(text)).length",
                             [kind, text]))


def wait_toast(page: Any, kind: str, text: str, timeout: float = 15_000) -> None:
    """Until the page has shown a toast of ``kind`` mentioning ``text`` (see ``watch_toasts``),
    whether or not it is still on screen."""
    try:
        page.wait_for_function("([kind, text]) => window.toastsShown.some(t => "
                               "t.kinds.includes(kind) && t.text.includes(text))",
                               arg=[kind, text], timeout=timeout)
    except PlaywrightTimeout as timeout_error:
        shown = page.evaluate("() => window.toastsShown.map(t => t.kinds.join('.') + ' ' + t.text)")
        received = page.evaluate("() => window.gridcore.live.events.received"
                                 ".map(e => [e.kind, e.public_no, e.notify])")
        raise AssertionError(f"no {kind} toast about {text} in {timeout / 1000:.0f} s; toasts "
                             f"shown: {shown}; events received: {received}; "
                             f"{still_open(page)}") from timeout_error
