"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

One place owns the binary, the flags that work on this machine (no sandbox as root, no
background networking on a closed network) and the one justified skip.
"""

from __future__ import annotations

import io
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


@contextmanager
def chromium_browser() -> Iterator[Any]:
    """A launched Chromium (Playwright gives it a fresh temporary profile), closed afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (scripts/install.sh --test installs it)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield chromium
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
