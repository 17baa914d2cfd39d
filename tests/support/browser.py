"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

One place owns the binary, the flags that work on this machine (no sandbox as root, no
background networking on a closed network) and the one justified skip.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# GRIDCORE_BROWSER_CPU_THROTTLE=4 runs every page's scripts four times slower (Chrome's CPU
# throttling, as DevTools does): the way to look for races that a slow, loaded CI machine hits.
THROTTLE = float(os.environ.get("GRIDCORE_BROWSER_CPU_THROTTLE", "0") or 0)


def _throttled(page: Any) -> Any:
    page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": THROTTLE})
    return page


class _ThrottledContext:
    def __init__(self, context: Any) -> None:
        self._context = context

    def new_page(self, *args: Any, **kwargs: Any) -> Any:
        return _throttled(self._context.new_page(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class _ThrottledBrowser:
    def __init__(self, browser: Any) -> None:
        self._browser = browser

    def new_context(self, *args: Any, **kwargs: Any) -> Any:
        return _ThrottledContext(self._browser.new_context(*args, **kwargs))

    def new_page(self, *args: Any, **kwargs: Any) -> Any:
        return _throttled(self._browser.new_page(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


@contextmanager
def chromium_browser() -> Iterator[Any]:
    """A launched Chromium (Playwright gives it a fresh temporary profile), closed afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/install.sh --test installs it)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield _ThrottledBrowser(chromium) if THROTTLE > 1 else chromium
        finally:
            chromium.close()


def settle(page) -> None:
    """Wait until the map has drawn what it loaded (an 'idle' after a forced repaint)."""
    page.evaluate("() => new Promise(done => { const m = window.gridcore.map; "
                  "m.once('idle', () => done(true)); m.triggerRepaint(); })")


def pixel(page, shot: bytes, lon: float, lat: float) -> tuple[int, int, int]:
    from PIL import Image

    x, y = page.evaluate(
        "([lon, lat]) => { const p = window.gridcore.map.project([lon, lat]); return [p.x, p.y]; }",
        [lon, lat])
    box = page.locator("#map").bounding_box()
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    r, g, b = image.getpixel((int(box["x"] + x), int(box["y"] + y)))  # type: ignore[misc]
    return int(r), int(g), int(b)


def near(rgb: tuple[int, int, int], hex_colour: str, tolerance: int = 40) -> bool:
    want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, want, strict=True))
