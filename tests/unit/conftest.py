"""Unit tests need no database: a test here that asks for a database fixture is refused at
collection, so ``pytest tests/unit`` keeps running in seconds without PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.database import DATABASE_FIXTURES

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            wanted = DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
            if wanted:
                raise pytest.UsageError(
                    f"{item.nodeid} is a unit test but uses {', '.join(sorted(wanted))}: "
                    "move it to tests/db or tests/api")
