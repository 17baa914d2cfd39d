"""The browser tests' housekeeping: a test's pages are closed when its body ends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Close the browser contexts a test opened on the module's shared Chromium once its body
    is done, before its fixtures are torn down. Left open, every earlier test's map and
    workbench pages kept their event streams, their 5 s polls and their queue reloads on every
    event, and kept drawing: on a slow machine each later test of the module ran slower."""
    yield
    browser: Any = getattr(item, "funcargs", {}).get("chromium")
    for context in list(getattr(browser, "contexts", None) or []):
        with contextlib.suppress(Exception):  # one the test closed already, a browser gone
            context.close()
