"""Schemathesis against the OpenAPI spec, in production mode, with a token of every role but the
admin's and as an anonymous caller: no 500s, no answer that breaks the schema
(tests/support/fuzz.py; the admin: tests/api/test_api_fuzz.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.fuzz import fuzz


@pytest.mark.slow
def test_openapi_operations_hold_their_schema_for_every_caller(db: Engine,
                                                                artifacts: Path) -> None:
    fuzz(db, artifacts, admin=False)
