"""Schemathesis against the OpenAPI spec, in production mode, with an admin's token: valid data
must hold the schema, invalid data must be refused, never a 500 (tests/support/fuzz.py; the
other roles and anonymous callers: tests/api/test_api_fuzz_roles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.fuzz import fuzz


@pytest.mark.slow
def test_openapi_operations_hold_their_schema(db: Engine, artifacts: Path) -> None:
    fuzz(db, artifacts, admin=True)
